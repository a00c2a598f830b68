"""``python -m labutils run``: the whole series in batch, planned into a time budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labutils.course import budget, profiles
from labutils.course.arguments import (
    DATA_AND_TRAINING_ERRORS,
    add_data_arguments,
)

EXPLAINED_ERRORS = DATA_AND_TRAINING_ERRORS  # printed without a traceback


def command_run(args: argparse.Namespace) -> int:
    from labutils.course import runner  # papermill is only needed here

    if not runner.NOTEBOOK_FOLDER.is_dir():  # installed from a wheel, which has no notebooks
        print(
            f"error: no notebooks at {runner.NOTEBOOK_FOLDER}: the series runs from a clone of "
            f"the lab's repository (the installed package does not carry the notebooks).",
            file=sys.stderr,
        )
        return 1
    try:
        runner.run_series(
            args.profile,
            args.data,
            args.root,
            args.verify,
            args.out,
            args.seed,
            budget_minutes=args.budget,
            epochs=args.epochs,
        )
    except (runner.NotebookFailed, budget.BudgetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="execute the whole notebook series with papermill into a run folder",
        description="Execute notebooks 01-04 (03 once per model) with papermill. The run "
        "folder gets the executed notebooks, each model's files, the figures and "
        "summary.md.",
    )
    parser.add_argument(
        "--profile",
        default="auto",
        choices=("auto", *profiles.PROFILE_NAMES),
        help="smoke: tiny synthetic data, a minute or two; cpu: planned into a time budget "
        "(60 minutes unless --budget says otherwise); gpu: 20 epochs per model, as the report "
        "trained; auto: gpu if CUDA is available, else cpu (default: %(default)s)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("runs/latest"), help="run folder (default: %(default)s)"
    )
    fixed = parser.add_mutually_exclusive_group()
    fixed.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="plan the series into this many minutes on this machine: each model's training "
        "is sized from a few timed steps, and sized again before each model from the minutes "
        "left (default: the profile's, 60 for cpu; 0: the profile's fixed epochs)",
    )
    fixed.add_argument(
        "--epochs", type=int, help="train every model this many epochs, with no time budget"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.set_defaults(handler=command_run)
