"""Where the data comes from: real CIFAR-10, or synthetic files, chosen once for every entry point.

``auto`` uses real CIFAR-10 if it is on disk, else tries to download it, else falls back to
synthetic files and says so loudly. The choice travels with the data as a ``DataSource``, so
logs, figure titles and reports can say what the numbers were measured on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labutils import data, synthetic
from labutils.checks import check_choice
from labutils.download import DownloadError, download_cifar10

SOURCES = ("auto", "cifar10", "synthetic")
# The synthetic set written when nothing else is asked for: small enough to train in seconds.
SYNTHETIC_TRAIN_PER_CLASS = 200
SYNTHETIC_TEST_PER_CLASS = 50


@dataclass(frozen=True)
class DataSource:
    """The data a run uses: its kind (``cifar10`` or ``synthetic``), folder and verification."""

    kind: str
    root: Path
    verified: bool

    @property
    def is_synthetic(self) -> bool:
        return self.kind == "synthetic"

    @property
    def label(self) -> str:
        """A short description for titles: says loudly when the data is not CIFAR-10."""
        if self.is_synthetic:
            return "SYNTHETIC data (not CIFAR-10)"
        return "CIFAR-10" if self.verified else "CIFAR-10 (unverified copy)"

    def load(self, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Load a split as (images uint8 [N, 32, 32, 3], labels int64 [N])."""
        return data.load_cifar10(self.root, split, verify=self.verified)

    def describe(self) -> str:
        """One line for logs: what the data is and where it lies."""
        check = "md5 verified official" if self.verified else "md5 not checked"
        return f"data: {self.label} from {self.root / data.BATCH_FOLDER} ({check})"


def _is_the_lab(folder: Path) -> bool:
    """Whether ``folder`` is a clone of the lab's repository (its package and its notebooks)."""
    return (folder / "labutils" / "__init__.py").is_file() and (folder / "notebooks").is_dir()


def repository() -> Path | None:
    """The clone of the lab this code runs in, or None where the lab was installed from a wheel.

    The clone of the imported package (an editable install), else the working folder or the
    one above it (a notebook in ``notebooks/`` of a clone with a non-editable install).
    """
    for folder in (Path(__file__).resolve().parents[1], Path.cwd(), Path.cwd().parent):
        if _is_the_lab(folder):
            return folder
    return None


def cache_folder() -> Path:
    """The lab's folder in the user's cache: where data goes when there is no clone."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "labutils" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "labutils"
    # The XDG convention of Linux desktops, Colab and JupyterHubs (torch caches there too).
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labutils"


def default_root() -> Path:
    """``$CIFAR10_ROOT`` if set, else ``data/`` in the lab's clone, else the user's cache."""
    if os.environ.get("CIFAR10_ROOT"):
        return Path(os.environ["CIFAR10_ROOT"]).expanduser()
    clone = repository()
    return clone / "data" if clone is not None else cache_folder() / "data"


def synthetic_root(root: Path, train_per_class: int, test_per_class: int, seed: int) -> Path:
    """A folder of its own for each synthetic size and seed, so runs never overwrite each other."""
    return root / f"synthetic-{train_per_class}x{test_per_class}-seed{seed}"


def get_synthetic(
    root: Path,
    train_per_class: int = SYNTHETIC_TRAIN_PER_CLASS,
    test_per_class: int = SYNTHETIC_TEST_PER_CLASS,
    seed: int = 0,
) -> DataSource:
    """Synthetic files under ``root``, written on first use."""
    folder = synthetic_root(root, train_per_class, test_per_class, seed)
    if not data.is_synthetic(folder):
        synthetic.write_synthetic_cifar10(folder, train_per_class, test_per_class, seed)
    return DataSource("synthetic", folder, verified=False)


def _installed_cifar10(root: Path, verify: bool) -> DataSource | None:
    """The real files under ``root``, checked; None when there are none."""
    if not (root / data.BATCH_FOLDER).is_dir():
        return None
    if data.is_synthetic(root):
        return DataSource("synthetic", root, verified=False)
    if verify:
        data.require_official(data.verify_files(root), root)
    return DataSource("cifar10", root, verified=verify)


def get_data_source(
    source: str = "auto",
    root: str | os.PathLike | None = None,
    verify: bool = True,
    download: bool = True,
    synthetic_train_per_class: int = SYNTHETIC_TRAIN_PER_CLASS,
    synthetic_test_per_class: int = SYNTHETIC_TEST_PER_CLASS,
    seed: int = 0,
    url: str = data.URL,
) -> DataSource:
    """Resolve ``auto`` | ``cifar10`` | ``synthetic`` into the data a run will use."""
    check_choice("data source", source, SOURCES)
    root = Path(root).expanduser() if root is not None else default_root()
    if source == "synthetic":
        return get_synthetic(root, synthetic_train_per_class, synthetic_test_per_class, seed)
    installed = _installed_cifar10(root, verify)
    if installed is not None and installed.is_synthetic and source == "cifar10":
        raise data.CIFAR10FileError(
            f"{root / data.BATCH_FOLDER} holds synthetic files, not CIFAR-10: ask for "
            f"'synthetic' or 'auto', or point the root at a real copy."
        )
    if installed is not None:
        return installed
    if download:
        try:
            download_cifar10(root, url=url)
            return DataSource("cifar10", root, verified=True)
        except DownloadError as error:
            if source == "cifar10":
                raise
            reason = str(error).splitlines()[0]
    else:
        reason = f"no CIFAR-10 files in {root} and downloading is off"
        if source == "cifar10":
            raise data.CIFAR10FileError(f"{reason}. {data.HOW_TO_GET_DATA}")
    fallback = get_synthetic(root, synthetic_train_per_class, synthetic_test_per_class, seed)
    announce_fallback(reason, fallback)
    return fallback


def announce_fallback(reason: str, source: DataSource) -> None:
    """Say loudly that the numbers about to be printed are not CIFAR-10 numbers."""
    bar = "!" * 78
    print(
        f"{bar}\n!! CIFAR-10 is not available: {reason}\n"
        f"!! Falling back to SYNTHETIC images in {source.root}.\n"
        f"!! Every result below is measured on synthetic data, not on CIFAR-10.\n{bar}"
    )
