"""Choosing the data: auto, cifar10 or synthetic, and saying which."""

import socket

import pytest

from labutils import data, sources


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/{data.ARCHIVE_NAME}"


def test_synthetic_source_writes_files_once_and_says_it_is_synthetic(tmp_path):
    source = sources.get_data_source(
        "synthetic", tmp_path, synthetic_train_per_class=3, synthetic_test_per_class=2
    )
    assert source.is_synthetic and not source.verified
    assert "SYNTHETIC" in source.label and "SYNTHETIC" in source.describe()
    first_write = (source.root / data.BATCH_FOLDER / "data_batch_1").stat().st_mtime_ns
    again = sources.get_data_source(
        "synthetic", tmp_path, synthetic_train_per_class=3, synthetic_test_per_class=2
    )
    assert again == source
    assert (source.root / data.BATCH_FOLDER / "data_batch_1").stat().st_mtime_ns == first_write
    images, _ = source.load("test")
    assert len(images) == 20


def test_auto_falls_back_to_synthetic_loudly_when_download_fails(tmp_path, capsys):
    source = sources.get_data_source(
        "auto",
        tmp_path,
        url=closed_port_url(),
        synthetic_train_per_class=3,
        synthetic_test_per_class=2,
    )
    assert source.is_synthetic
    output = capsys.readouterr().out
    assert "Falling back to SYNTHETIC" in output and "not on CIFAR-10" in output


def test_auto_without_download_falls_back_too(tmp_path, capsys):
    source = sources.get_data_source(
        "auto", tmp_path, download=False, synthetic_train_per_class=3, synthetic_test_per_class=2
    )
    assert source.is_synthetic and "downloading is off" in capsys.readouterr().out


def test_cifar10_source_never_falls_back(tmp_path):
    with pytest.raises(RuntimeError, match="Could not download"):
        sources.get_data_source("cifar10", tmp_path, url=closed_port_url())
    with pytest.raises(data.CIFAR10FileError, match="downloading is off"):
        sources.get_data_source("cifar10", tmp_path, download=False)


def test_a_copy_that_is_not_official_is_refused_unless_trusted(copy_root):
    with pytest.raises(data.NotOfficialError, match="--no-verify"):
        sources.get_data_source("auto", copy_root, download=False)
    trusted = sources.get_data_source("cifar10", copy_root, verify=False, download=False)
    assert trusted.kind == "cifar10" and not trusted.verified
    assert trusted.label == "CIFAR-10 (unverified copy)"


def test_synthetic_files_are_never_taken_for_cifar10(synthetic_root):
    assert sources.get_data_source("auto", synthetic_root, verify=False).is_synthetic
    with pytest.raises(data.CIFAR10FileError, match="holds synthetic files"):
        sources.get_data_source("cifar10", synthetic_root, verify=False)


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="data source = 'imagenet' is not valid: choose one of"):
        sources.get_data_source("imagenet", tmp_path)


def test_root_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path))
    assert sources.default_root() == tmp_path
    monkeypatch.delenv("CIFAR10_ROOT")
    assert sources.default_root().name == "data"
