"""``python -m labutils student|check``: the student edition and the self-check."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labutils.course import profiles


def command_student(args: argparse.Namespace) -> int:
    from labutils.course import grading, runner  # nbgrader is only needed here

    start = time.perf_counter()
    source = args.source or runner.NOTEBOOK_FOLDER
    written = grading.write_student_edition(source, args.out, args.package)
    for path in written:
        print(f"wrote {path}")
    print(
        f"Student edition: {len(written)} notebooks in {args.out} "
        f"({time.perf_counter() - start:.1f} s). Solutions, outputs and hidden tests removed."
    )
    if args.package is None:
        print(
            "No --package: outside the repository (Colab, a JupyterHub) these notebooks install "
            "the lab only where $LABUTILS_PACKAGE is set (docs/outside.md)."
        )
    return 0


def command_check(args: argparse.Namespace) -> int:
    from labutils.course import grading  # nbclient and papermill are only needed here

    everything_passed = True
    for path in args.notebooks:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: give the path of a notebook, for "
                f"example notebooks/02_models.ipynb."
            )
        start = time.perf_counter()
        print(f"checking {path} (profile {args.profile}) ...", flush=True)
        results = grading.grade_executed(grading.execute_for_check(path, args.profile))
        print(grading.format_results(path.name, results))
        print(f"  ({time.perf_counter() - start:.0f} s)")
        everything_passed = everything_passed and grading.all_passed(results)
    return 0 if everything_passed else 1


def add_commands(commands) -> None:
    student = commands.add_parser(
        "student",
        help="write the student edition of the notebooks (nbgrader stubs, no outputs)",
        description="Write the student edition: every solution region replaced by nbgrader's "
        "stub, outputs cleared, hidden tests removed, with nbgrader's own "
        "preprocessors.",
    )
    student.add_argument(
        "--out",
        type=Path,
        default=Path("student"),
        help="folder for the student notebooks (default: %(default)s)",
    )
    student.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder of solution notebooks (default: the lab's notebooks/)",
    )
    student.add_argument(
        "--package",
        metavar="URL",
        help="where the notebooks install the lab from outside the repository (Colab, a "
        "JupyterHub): the URL of the lab's wheel, or pip's git+https://... (default: none)",
    )
    student.set_defaults(handler=command_student)

    check = commands.add_parser(
        "check",
        help="self-check: run notebooks and report every exercise",
        description="Execute each notebook in a fresh kernel (an error in one cell does not "
        "stop the rest) and print one line per exercise: passed, failed (with the "
        "check's message) or not attempted, then the points. Exit 0 only when "
        "every check passes.",
    )
    check.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    check.add_argument(
        "--profile",
        default="smoke",
        choices=profiles.PROFILE_NAMES,
        help="smoke: tiny synthetic data, seconds per notebook (default: %(default)s)",
    )
    check.set_defaults(handler=command_check)
