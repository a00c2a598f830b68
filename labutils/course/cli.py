"""The command line: ``python -m labutils data|train|run|speedrun|student|check ...``.

Each command lives in a module of ``labutils.course.commands``; this module builds the parser
from the one that defines the command typed (from all of them for ``--help``), so that a
command which trains nothing (``check``, ``grade``, ``book``) starts without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

DESCRIPTION = (
    "The CIFAR-10 lab: its data, training, the whole series in batch, the speed track "
    "and the course's tools."
)
# Each command, and the module of labutils.course.commands that defines it.
COMMANDS = {
    "data": "data",
    "train": "train",
    "run": "run",
    "speedrun": "speedrun",
    "student": "teaching",
    "check": "teaching",
    "grade": "teaching",
    "gradescope": "teaching",
    "book": "book",
}
# Errors whose message says what went wrong and what to do: printed without a traceback.
# A command's module adds its own in EXPLAINED_ERRORS (a failed download, a diverged run).
EXPLAINED_ERRORS = (ValueError, FileNotFoundError)


def command_modules(command: str | None = None) -> list[ModuleType]:
    """The module defining ``command``; every command module when it is not one (``--help``)."""
    names = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    return [importlib.import_module(f"labutils.course.commands.{name}") for name in names]


def build_parser(modules: list[ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labutils", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules() if modules is None else modules:
        module.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors meant for a student are printed without a traceback."""
    argv = sys.argv[1:] if argv is None else [str(argument) for argument in argv]
    modules = command_modules(argv[0] if argv else None)
    args = build_parser(modules).parse_args(argv)
    explained = EXPLAINED_ERRORS + tuple(
        error for module in modules for error in getattr(module, "EXPLAINED_ERRORS", ())
    )
    try:
        return args.handler(args)
    except explained as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
