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

# Under pytest-xdist every worker is one of several processes sharing the cores: one thread each
# (and in every kernel and command they start), or their thread pools fight over the cores and
# a notebook runs several times slower. Set before torch is imported.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

from labutils import data, synthetic  # noqa: E402

# Tests never draw progress bars and never reach the network for data.
os.environ.setdefault("LABUTILS_PROGRESS", "0")

TESTS = Path(__file__).parent
# The modules that take longest, longest first: ``make test`` hands whole modules to the
# workers in this order (--no-loadscope-reorder), so that they finish together. The runner's
# tests come first: they start the session's smoke series, which later modules read.
SLOWEST_FIRST = (
    "course/test_runner.py",
    "engine/test_distributed.py",
    "course/test_student_edition.py",
    "course/test_budget.py",
    "course/test_grading.py",
    "course/test_class_grading.py",
    "speedrun/test_trainer.py",
    "course/test_cli.py",
    "course/test_execution.py",
    "test_outside.py",
    "course/test_book.py",
    "test_benchmarks.py",
)


def pytest_collection_modifyitems(items):
    def place(item) -> int:
        module = item.path.relative_to(TESTS).as_posix()
        return SLOWEST_FIRST.index(module) if module in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=place)  # a stable sort: each module's tests keep their order


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
