"""``python -m labutils book``: the static site of an executed run (see ``course/book.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def command_book(args: argparse.Namespace) -> int:
    from labutils.course import book  # Sphinx is only needed here

    try:
        _, warnings = book.build_book(args.run, args.out, with_solutions=args.with_solutions)
    except book.BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if warnings.strip():
        print(f"Sphinx's warnings:\n{warnings}", file=sys.stderr)
    return 0


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "book",
        help="build the static site (the book) of an executed run",
        description="Build a static site from a run folder: the lessons as they ran, with "
        "their outputs and figures, the run's summary and figures, and the pages under docs/, "
        "with a contents sidebar and search. Built offline; open OUT/index.html in a browser.",
    )
    parser.add_argument(
        "--run",
        type=Path,
        default=Path("runs/latest"),
        help="the run folder (python -m labutils run --out ...) (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/book"),
        help="where the site goes; an earlier book there is replaced (default: %(default)s)",
    )
    parser.add_argument(
        "--with-solutions",
        action="store_true",
        help="show the answers to the exercises (the instructor's edition); hidden by default",
    )
    parser.set_defaults(handler=command_book)
