"""Shared fixtures: small synthetic CIFAR-10 files in the official format, made per session,
and one smoke run of the whole series, shared by every test that reads it (the runner's, the
book's).

Under pytest-xdist (``make test`` runs ``-n auto``) each worker is a process of its own: the
series is then run by the first worker that asks for it, under a file lock, and read by all.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

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
def smoke_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``python -m labutils run --profile smoke`` on synthetic data: (its result, the run folder).

    Read it, never change it: other tests share it.
    """
    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:  # each worker's folder is inside the session's
        shared = shared.parent
    out, record = shared / "smoke-series" / "run", shared / "smoke-series.json"
    with FileLock(str(shared / "smoke-series.lock")):
        if not record.exists():
            command = [sys.executable, "-m", "labutils", "run", "--profile", "smoke"]
            command += ["--root", str(out.parent / "data"), "--out", str(out)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            outcome = [result.returncode, result.stdout, result.stderr]
            record.write_text(json.dumps([command, *outcome]))
    return subprocess.CompletedProcess(*json.loads(record.read_text())), out
