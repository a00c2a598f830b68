"""The options several commands share: where the data is, the device, the precision."""

from __future__ import annotations

import argparse
from pathlib import Path

from labutils import runtime, sources
from labutils.download import DownloadError
from labutils.train import TrainingDiverged

# What a command that reads data and trains explains without a traceback (labutils.course.cli
# reads each command module's EXPLAINED_ERRORS): a failed download, a diverged run.
DATA_AND_TRAINING_ERRORS = (DownloadError, TrainingDiverged)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that reads data shares."""
    parser.add_argument(
        "--data",
        choices=sources.SOURCES,
        default="auto",
        help="auto: CIFAR-10 if present or downloadable, else synthetic (default: %(default)s)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="folder that contains cifar-10-batches-py "
        "(default: $CIFAR10_ROOT, else data/ in the repository)",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept a copy whose md5 sums differ from the official release "
        "(still read safely and checked)",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--device`` option of every command that trains."""
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """--precision, the same for every command that trains."""
    parser.add_argument(
        "--precision",
        default="auto",
        choices=runtime.PRECISION_CHOICES,
        help="auto: bf16 autocast where the hardware runs it natively (default: %(default)s)",
    )
