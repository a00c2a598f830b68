"""Download and install the official CIFAR-10 archive, safely.

Nothing is ever left half-written under its final name: the archive is fetched and unpacked
in a temporary folder beside the target, checked, and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, download_url

from labutils.data import (
    ARCHIVE_MD5,
    ARCHIVE_NAME,
    BATCH_FOLDER,
    URL,
    FileCheck,
    format_file_checks,
    verify_files,
)


class DownloadError(RuntimeError):
    """The archive could not be fetched, or what was fetched is not the archive we expect."""


def _by_hand(root: Path) -> str:
    return (
        f"To install it by hand, get {ARCHIVE_NAME} from {URL} on a machine that is online, "
        f"copy it here and run:\n  python -m labutils data download --root {root} "
        f"--archive /path/to/{ARCHIVE_NAME}"
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torchvision's downloader opens URLs without a timeout; bound every socket wait."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch_archive(url: str, folder: Path, root: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` into ``folder`` with torchvision's helper; clear errors when offline."""
    try:
        with _socket_timeout(timeout):
            download_url(url, str(folder), filename=ARCHIVE_NAME)
    except (urllib.error.URLError, OSError, ValueError, RuntimeError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"Could not download {url}: {reason}.\n{_by_hand(root)}") from None
    return folder / ARCHIVE_NAME


def check_archive(path: Path, md5: str | None, root: Path) -> None:
    """Refuse an archive whose md5 is not the expected one."""
    if not path.is_file():
        raise DownloadError(f"No archive at {path}.\n{_by_hand(root)}")
    if md5 is None:
        return
    actual = calculate_md5(path)
    if actual != md5:
        raise DownloadError(
            f"{path} has md5 {actual}, but the expected archive has {md5}: it is damaged "
            f"(a cut-off download?) or another file. Nothing was installed.\n{_by_hand(root)}"
        )


def extract_archive(archive: Path, folder: Path) -> Path:
    """Unpack with tarfile's 'data' filter, which refuses members that would land outside."""
    if not hasattr(tarfile, "data_filter"):
        raise DownloadError("Safe extraction needs Python 3.10.12 or newer: please upgrade Python.")
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(folder, filter="data")
    except tarfile.FilterError as error:
        member = getattr(getattr(error, "tarinfo", None), "name", "?")
        raise DownloadError(
            f"Refused {archive}: member {member!r} is unsafe ({type(error).__name__}: "
            f"{error}). Nothing was installed."
        ) from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DownloadError(f"{archive} is not a readable .tar.gz archive ({error}).") from None
    extracted = folder / BATCH_FOLDER
    if not extracted.is_dir():
        raise DownloadError(f"{archive} has no '{BATCH_FOLDER}' folder: it is not CIFAR-10.")
    return extracted


def _move_into_place(extracted: Path, target: Path) -> None:
    if target.exists():
        # An older or modified copy is kept, not destroyed: the student may want it.
        aside = target.with_name(f"{target.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(target, aside)
        print(f"Moved the previous {target} to {aside}")
    os.replace(extracted, target)


def already_installed(root: Path) -> list[FileCheck] | None:
    """The checks of an installed copy whose files are all official, else None."""
    if not (root / BATCH_FOLDER).is_dir():
        return None
    checks = verify_files(root)
    return checks if all(check.status == "official" for check in checks) else None


def download_cifar10(
    root: str | os.PathLike,
    archive: str | os.PathLike | None = None,
    url: str = URL,
    md5: str | None = ARCHIVE_MD5,
    timeout: float = 30.0,
) -> list[FileCheck]:
    """Install CIFAR-10 under ``root`` from ``url`` (or a local ``archive``); returns the checks."""
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    checks = already_installed(root)
    if checks is not None:
        print(f"CIFAR-10 is already installed and official in {root / BATCH_FOLDER}")
        return checks
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".cifar10-download-"))
    try:
        if archive is None:
            print(f"Downloading {url} into {root} ...")
            archive_path = fetch_archive(url, staging, root, timeout)
        else:
            archive_path = Path(archive).expanduser()
        check_archive(archive_path, md5, root)
        extracted = extract_archive(archive_path, staging / "extracted")
        _move_into_place(extracted, root / BATCH_FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    checks = verify_files(root)
    print(f"Installed CIFAR-10 in {root / BATCH_FOLDER}\n{format_file_checks(checks)}")
    return checks
