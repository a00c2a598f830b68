"""The command line: ``python -m labutils data|train|run|speedrun|student|check ...``.

Each command lives in ``labutils.course.commands``; this module builds the parser from them.
"""

from __future__ import annotations

import argparse
import sys

from labutils import data
from labutils.course.commands import book, run, speedrun, teaching, train
from labutils.course.commands import data as data_commands
from labutils.download import DownloadError
from labutils.train import TrainingDiverged

DESCRIPTION = (
    "The CIFAR-10 lab: its data, training, the whole series in batch, the speed track "
    "and the course's tools."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labutils", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (data_commands, train, run, speedrun, teaching, book):
        command.add_commands(subparsers)
    return parser


# Errors whose message says what went wrong and what to do: no traceback needed.
STUDENT_ERRORS = (
    data.CIFAR10FileError,
    DownloadError,
    TrainingDiverged,
    ValueError,
    FileNotFoundError,
)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors meant for a student are printed without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except STUDENT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
