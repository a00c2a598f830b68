"""The official CIFAR-10 release as the lab knows it: where it comes from, its file names and
checksums (torchvision's CIFAR10 class is the one source of truth), its classes, the layout of
an image, the training images' mean and std; and how the lab writes a file, whole or not at all.

``data`` reads these files, ``synthetic`` writes stand-ins in the same format; both start here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from torchvision.datasets import CIFAR10 as _TorchvisionCIFAR10

# Official names and checksums: torchvision's CIFAR10 class is the one source of truth.
URL: str = _TorchvisionCIFAR10.url
ARCHIVE_NAME: str = _TorchvisionCIFAR10.filename
ARCHIVE_MD5: str = _TorchvisionCIFAR10.tgz_md5
BATCH_FOLDER: str = _TorchvisionCIFAR10.base_folder
TRAIN_FILES: tuple[str, ...] = tuple(name for name, _ in _TorchvisionCIFAR10.train_list)
TEST_FILES: tuple[str, ...] = tuple(name for name, _ in _TorchvisionCIFAR10.test_list)
META_FILE: str = _TorchvisionCIFAR10.meta["filename"]
OFFICIAL_MD5: dict[str, str] = {
    **dict(_TorchvisionCIFAR10.train_list),
    **dict(_TorchvisionCIFAR10.test_list),
    META_FILE: _TorchvisionCIFAR10.meta["md5"],
}
ALL_FILES: tuple[str, ...] = (*TRAIN_FILES, *TEST_FILES, META_FILE)

CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# Per-channel mean and standard deviation of the 50 000 official training images, in [0, 1].
MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

IMAGE_SIZE = 32
PIXELS_PER_IMAGE = 3 * IMAGE_SIZE * IMAGE_SIZE  # 1024 red, then 1024 green, then 1024 blue
SYNTHETIC_MARKER = "synthetic.json"
SPLITS = ("train", "test")


def write_atomically(path: Path, content: bytes) -> None:
    """Write a file under a temporary name in the same folder, then rename it into place."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
