"""CIFAR-10 on disk: the official files and their checksums, and a safe reader.

The batch files are Python 2 pickles (protocol 2). A pickle can run any code while it loads,
so every file here is read through ``RestrictedUnpickler``, which builds numpy arrays and
nothing else, and its content is checked before anyone uses it. Synthetic files in the same
format are written by ``labutils.synthetic``; the names, checksums and classes of the files
are in ``labutils.cifar_format``, and offered here too.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets.utils import calculate_md5

from labutils.checks import check_choice
from labutils.cifar_format import (  # noqa: F401  (offered as data.NAME)
    ALL_FILES,
    ARCHIVE_MD5,
    ARCHIVE_NAME,
    BATCH_FOLDER,
    CLASSES,
    IMAGE_SIZE,
    MEAN,
    META_FILE,
    OFFICIAL_MD5,
    PIXELS_PER_IMAGE,
    SPLITS,
    STD,
    SYNTHETIC_MARKER,
    TEST_FILES,
    TRAIN_FILES,
    URL,
    write_atomically,
)
from labutils.synthetic import write_synthetic_cifar10  # noqa: F401  (offered as data.NAME)


class CIFAR10FileError(ValueError):
    """A CIFAR-10 file or folder that is missing, unsafe or malformed."""


class UnsafePickleError(CIFAR10FileError):
    """A pickle that asks for something other than a numpy array: it is never loaded."""


class NotOfficialError(CIFAR10FileError):
    """Files whose md5 sums differ from the official release, refused while verifying."""


# --------------------------------------------------------------------------- safe reader


def _numpy_reconstruct():
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    return core.multiarray._reconstruct


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain Python values, and refuses all else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"the pickle asks for {module}.{name}, which a CIFAR-10 batch never needs"
            )
        return _ALLOWED_GLOBALS[(module, name)]()


def read_pickle(path: str | os.PathLike, encoding: str = "latin1") -> dict:
    """Load one CIFAR-10 pickle safely, with str keys (``encoding="latin1"``) or bytes keys."""
    path = Path(path)
    if not path.is_file():
        raise CIFAR10FileError(f"{path} does not exist (or is not a file). {HOW_TO_GET_DATA}")
    try:
        with open(path, "rb") as file:
            return RestrictedUnpickler(file, encoding=encoding).load()
    except UnsafePickleError as error:
        raise UnsafePickleError(
            f"Refused to load {path}: {error}. The file may be tampered with: delete it and "
            f"download the data again."
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        struct.error,
    ) as error:
        size = path.stat().st_size
        raise CIFAR10FileError(
            f"{path} ({size} bytes) is not a readable CIFAR-10 pickle "
            f"({type(error).__name__}: {error}). It may be truncated or another file under "
            f"this name: delete it and download the data again."
        ) from None


def _text_keys(record: dict) -> dict:
    """Turn the bytes keys of ``encoding="bytes"`` into text, so both views check alike."""
    return {
        key.decode("latin1") if isinstance(key, bytes) else key: value
        for key, value in record.items()
    }


def check_batch(record: object, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Check a loaded batch and return (images uint8 [N, 32, 32, 3], labels int64 [N])."""
    if not isinstance(record, dict):
        raise CIFAR10FileError(
            f"{path} holds a {type(record).__name__}, not a CIFAR-10 batch dict."
        )
    record = _text_keys(record)
    missing = [key for key in ("data", "labels") if key not in record]
    if missing:
        raise CIFAR10FileError(
            f"{path} has no {missing} key(s) (keys found: {sorted(record)}): not a CIFAR-10 batch."
        )
    data = record["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS_PER_IMAGE
    ):
        found = (
            f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise CIFAR10FileError(
            f"{path}: 'data' should be a uint8 array of shape (N, {PIXELS_PER_IMAGE}), "
            f"found {found}."
        )
    labels = np.asarray(record["labels"])
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise CIFAR10FileError(
            f"{path}: expected {len(data)} integer labels, found an array of {labels.dtype} "
            f"with shape {labels.shape}."
        )
    out_of_range = labels[(labels < 0) | (labels >= len(CLASSES))]
    if out_of_range.size:
        raise CIFAR10FileError(
            f"{path}: labels must be 0-9, found {sorted(set(out_of_range.tolist()))[:5]}."
        )
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def check_meta(record: object, path: str | os.PathLike) -> list[str]:
    """Check a loaded ``batches.meta`` and return its 10 class names."""
    names = _text_keys(record).get("label_names") if isinstance(record, dict) else None
    if not isinstance(names, list) or len(names) != len(CLASSES):
        raise CIFAR10FileError(
            f"{path}: expected a dict with 10 'label_names', found {names!r:.80}."
        )
    return [name.decode("latin1") if isinstance(name, bytes) else str(name) for name in names]


# --------------------------------------------------------------------------- folders and checksums

HOW_TO_GET_DATA = (
    "Get the data with `python -m labutils data download --root ROOT`, or write synthetic "
    "files with `python -m labutils data synthetic --root ROOT`."
)


def batch_folder(root: str | os.PathLike) -> Path:
    """Return ``root/cifar-10-batches-py`` after checking that the root is the right folder."""
    root = Path(root).expanduser()
    if root.name == BATCH_FOLDER and (root / META_FILE).exists():
        raise CIFAR10FileError(
            f"{root} is the '{BATCH_FOLDER}' folder itself; pass the folder that contains it: "
            f"{root.parent}"
        )
    if not root.is_dir():
        raise CIFAR10FileError(f"The data root {root} does not exist. {HOW_TO_GET_DATA}")
    folder = root / BATCH_FOLDER
    if not folder.is_dir():
        raise CIFAR10FileError(f"No '{BATCH_FOLDER}' folder in {root}. {HOW_TO_GET_DATA}")
    return folder


@dataclass(frozen=True)
class FileCheck:
    """The verification result of one file: official, differs, missing or unreadable."""

    name: str
    path: Path
    status: str
    expected_md5: str
    actual_md5: str | None = None
    detail: str = ""


def check_file(folder: Path, name: str) -> FileCheck:
    """Compare one file's md5 with the official one."""
    path = folder / name
    expected = OFFICIAL_MD5[name]
    if not path.exists():
        return FileCheck(name, path, "missing", expected)
    try:
        actual = calculate_md5(path)
    except OSError as error:
        return FileCheck(name, path, "unreadable", expected, detail=str(error))
    return FileCheck(name, path, "official" if actual == expected else "differs", expected, actual)


def verify_files(root: str | os.PathLike, names: tuple[str, ...] = ALL_FILES) -> list[FileCheck]:
    """Check every named file under ``root/cifar-10-batches-py`` against the official md5."""
    folder = batch_folder(root)
    return [check_file(folder, name) for name in names]


def format_file_checks(checks: list[FileCheck]) -> str:
    """A table with one line per file, for the terminal and notebooks."""
    lines = [f"{'file':<14} {'status':<11} detail"]
    for check in checks:
        if check.status == "differs":
            detail = f"md5 {check.actual_md5}, official {check.expected_md5}"
        else:
            detail = check.detail or (check.actual_md5 or "")
        lines.append(f"{check.name:<14} {check.status:<11} {detail}")
    return "\n".join(lines)


def is_synthetic(root: str | os.PathLike) -> bool:
    """True if the folder holds files written by ``synthetic.write_synthetic_cifar10``."""
    return (Path(root).expanduser() / BATCH_FOLDER / SYNTHETIC_MARKER).is_file()


def require_official(checks: list[FileCheck], root: Path) -> None:
    """Raise ``NotOfficialError`` naming each file that is not official, and the way to opt out."""
    bad = [check for check in checks if check.status != "official"]
    if not bad:
        return
    kind = "synthetic files" if is_synthetic(root) else "not the official CIFAR-10 release"
    raise NotOfficialError(
        f"These files under {root / BATCH_FOLDER} are {kind}:\n{format_file_checks(bad)}\n"
        f"If you trust this copy (a course server's mirror, a re-encoded copy, synthetic "
        f"files), read it without the md5 check: verify=False in Python, --no-verify on the "
        f"command line. Otherwise download the official archive again."
    )


# --------------------------------------------------------------------------- loading


def split_files(split: str) -> tuple[str, ...]:
    """The batch files of a split: ``"train"`` or ``"test"``."""
    check_choice("split", split, SPLITS)
    return TRAIN_FILES if split == "train" else TEST_FILES


def load_cifar10(
    root: str | os.PathLike, split: str = "train", verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load a split as (images uint8 [N, 32, 32, 3], labels int64 [N]), read safely.

    With ``verify=True`` files whose md5 differs from the official release are refused.
    """
    names = split_files(split)
    folder = batch_folder(root)
    if verify:
        require_official(verify_files(root, names), Path(root).expanduser())
    parts = [check_batch(read_pickle(folder / name), folder / name) for name in names]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return images, labels


def load_class_names(root: str | os.PathLike, verify: bool = True) -> list[str]:
    """Read the 10 class names from ``batches.meta``."""
    folder = batch_folder(root)
    if verify:
        require_official(verify_files(root, (META_FILE,)), Path(root).expanduser())
    return check_meta(read_pickle(folder / META_FILE), folder / META_FILE)


class CIFAR10(torch.utils.data.Dataset):
    """A torchvision-style dataset of ``(PIL image, label)`` items, read through the safe reader."""

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform=None,
        target_transform=None,
        verify: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.data, self.targets = load_cifar10(root, "train" if train else "test", verify)
        self.classes = load_class_names(root, verify)
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
