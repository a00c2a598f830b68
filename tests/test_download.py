"""Downloading and installing the archive, end to end against a local HTTP server."""

import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from labutils import data
from labutils.download import DownloadError, download_cifar10

BATCH = data.BATCH_FOLDER


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the files of a folder; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    def handler(*args, **kwargs):
        return QuietHandler(*args, directory=str(folder), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def make_archive(batch_folder: Path, extra_members=()) -> bytes:
    """A .tar.gz holding cifar-10-batches-py/ and any extra (name, bytes) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(batch_folder, arcname=BATCH)
        for name, content in extra_members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir()) if root.exists() else []


@pytest.fixture
def archive(synthetic_root) -> bytes:
    return make_archive(synthetic_root / BATCH)


def test_a_good_archive_downloads_and_installs(server, archive, tmp_path):
    folder, base = server
    (folder / data.ARCHIVE_NAME).write_bytes(archive)
    root = tmp_path / "root"
    checks = download_cifar10(root, url=f"{base}/{data.ARCHIVE_NAME}", md5=md5(archive))
    assert leftovers(root) == [BATCH]  # no archive, no staging folder left behind
    assert {check.status for check in checks} == {"differs"}  # synthetic, not official
    images, _ = data.load_cifar10(root, "train", verify=False)
    assert images.shape == (200, 32, 32, 3)


def test_wrong_md5_is_refused_and_nothing_is_installed(server, archive, tmp_path):
    folder, base = server
    (folder / data.ARCHIVE_NAME).write_bytes(archive)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match=f"but the expected archive has {'0' * 32}"):
        download_cifar10(root, url=f"{base}/{data.ARCHIVE_NAME}", md5="0" * 32)
    assert leftovers(root) == []


def test_truncated_archive_is_refused_and_nothing_is_installed(server, archive, tmp_path):
    folder, base = server
    (folder / data.ARCHIVE_NAME).write_bytes(archive[: len(archive) // 2])
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="damaged"):
        download_cifar10(root, url=f"{base}/{data.ARCHIVE_NAME}", md5=md5(archive))
    assert leftovers(root) == []


def test_truncated_archive_without_md5_check_fails_to_extract_cleanly(server, archive, tmp_path):
    folder, base = server
    (folder / data.ARCHIVE_NAME).write_bytes(archive[: len(archive) // 2])
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="not a readable .tar.gz archive"):
        download_cifar10(root, url=f"{base}/{data.ARCHIVE_NAME}", md5=None)
    assert leftovers(root) == []


def test_archive_with_a_parent_member_is_refused(server, synthetic_root, tmp_path):
    folder, base = server
    evil = make_archive(synthetic_root / BATCH, [("../escaped.txt", b"gotcha")])
    (folder / data.ARCHIVE_NAME).write_bytes(evil)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="'../escaped.txt' is unsafe"):
        download_cifar10(root, url=f"{base}/{data.ARCHIVE_NAME}", md5=md5(evil))
    assert leftovers(root) == []
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_local_archive_installs_without_network(archive, tmp_path):
    local = tmp_path / data.ARCHIVE_NAME
    local.write_bytes(archive)
    root = tmp_path / "root"
    download_cifar10(root, archive=local, md5=md5(archive))
    assert data.load_class_names(root, verify=False) == list(data.CLASSES)
    assert local.exists()  # the student's copy is left alone


def test_a_previous_copy_is_moved_aside_not_destroyed(archive, copy_root, tmp_path):
    local = tmp_path / data.ARCHIVE_NAME
    local.write_bytes(archive)
    download_cifar10(copy_root, archive=local, md5=md5(archive))
    names = leftovers(copy_root)
    assert BATCH in names and any(name.startswith(f"{BATCH}.old-") for name in names)


def test_an_archive_that_is_not_cifar10_is_refused(tmp_path):
    local = tmp_path / "other.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("photos/cat.jpg")
        tar.addfile(info, io.BytesIO(b""))
    local.write_bytes(buffer.getvalue())
    with pytest.raises(DownloadError, match=f"has no '{BATCH}' folder"):
        download_cifar10(tmp_path / "root", archive=local, md5=None)


def test_offline_download_fails_within_seconds_and_explains_the_manual_way(tmp_path):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{data.ARCHIVE_NAME}"
    start = time.monotonic()
    with pytest.raises(DownloadError) as error:
        download_cifar10(tmp_path / "root", url=url, timeout=5)
    assert time.monotonic() - start < 5
    assert url in str(error.value) and "--archive" in str(error.value)
    assert leftovers(tmp_path / "root") == []


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/{data.ARCHIVE_NAME}"
        start = time.monotonic()
        with pytest.raises(DownloadError, match="timed out"):
            download_cifar10(tmp_path / "root", url=url, timeout=1)
    assert time.monotonic() - start < 10
