"""Shared fixtures: small synthetic CIFAR-10 files in the official format, and one smoke run of
the series, each made once per session."""

import os
import shutil
import subprocess
import sys

import pytest

from labutils import data, synthetic

# Tests never draw progress bars and never reach the network for data.
os.environ.setdefault("LABUTILS_PROGRESS", "0")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A data root holding synthetic files: 20 training and 5 test images per class."""
    root = tmp_path_factory.mktemp("synthetic")
    synthetic.write_synthetic_cifar10(root, train_per_class=20, test_per_class=5, seed=0)
    return root


@pytest.fixture
def copy_root(synthetic_root, tmp_path):
    """A private copy of the synthetic files without the synthetic marker: an 'unknown copy'."""
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root / data.BATCH_FOLDER, root / data.BATCH_FOLDER)
    (root / data.BATCH_FOLDER / data.SYNTHETIC_MARKER).unlink()
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole series under the smoke profile, run once per session through the command line:
    (the finished process, the run folder). The runner's tests and the book's share it."""
    base = tmp_path_factory.mktemp("series")
    out = base / "run"
    command = ["run", "--profile", "smoke", "--root", base / "data", "--out", out]
    result = subprocess.run(
        [sys.executable, "-m", "labutils", *command], capture_output=True, text=True, timeout=600
    )
    return result, out
