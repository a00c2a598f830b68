"""``python -m labutils student|check|grade|gradescope``: the student edition, the self-check,
grading a class, and Gradescope's autograder bundle."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labutils.course import profiles

DEFAULT_TIMEOUT = 120  # seconds per cell: minutes more than any smoke-profile cell needs


def command_student(args: argparse.Namespace) -> int:
    from labutils.course import grading, runner  # nbgrader is only needed here

    start = time.perf_counter()
    source = args.source or runner.NOTEBOOK_FOLDER
    written = grading.write_student_edition(source, args.out, args.package)
    for path in written:
        print(f"wrote {path}")
    notebooks = [path for path in written if path.suffix == ".ipynb"]
    print(
        f"Student edition: {len(notebooks)} notebooks in {args.out} "
        f"({time.perf_counter() - start:.1f} s). Solutions, outputs and hidden tests removed; "
        f"checks.json keeps the checks as written, for `labutils check`."
    )
    if args.package is None:
        print(
            "No --package: outside the repository (Colab, a JupyterHub) these notebooks install "
            "the lab only where $LABUTILS_PACKAGE is set (docs/outside.md)."
        )
    return 0


def command_check(args: argparse.Namespace) -> int:
    from labutils.course import gradescope, results, submissions

    grades = []
    for path in args.notebooks:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: give the path of a notebook, for "
                f"example notebooks/02_models.ipynb."
            )
        start = time.perf_counter()
        print(f"checking {path} (profile {args.profile}) ...", flush=True)
        grade = submissions.self_check(path, args.source, args.profile, args.timeout)
        notes = grade.notes + ([grade.error] if grade.error else [])
        print(results.format_results(path.name, grade.results, notes))
        print(f"  ({time.perf_counter() - start:.0f} s)")
        grades.append(grade)
    if args.results_json:
        print(f"wrote {gradescope.write_results_json(grades, args.results_json)}")
    everything = [result for grade in grades for result in grade.results]
    return 0 if results.all_passed(everything) and not any(g.error for g in grades) else 1


def command_grade(args: argparse.Namespace) -> int:
    from labutils.course import class_grading, class_reports, runner, sandbox

    problem = sandbox.sandbox_problem(args.sandbox)
    if problem:
        raise ValueError(problem)
    limits = sandbox.Limits(args.timeout, args.memory_gb, args.sandbox)
    source = Path(args.source or runner.NOTEBOOK_FOLDER)
    grading = class_grading.Grading(source, args.out, limits, args.profile)
    start = time.perf_counter()
    grades, strays = class_grading.grade_class(args.submissions, grading, args.jobs)
    seconds = time.perf_counter() - start
    csv_path = class_reports.write_grades_csv(grades, args.out / "grades.csv")
    class_reports.write_feedback(grades, args.out)
    students = len({grade.student for grade in grades})
    header = (
        f"Graded {len(grades)} notebooks of {students} students in {seconds:.0f} s "
        f"(--jobs {args.jobs}, --timeout {args.timeout} s, sandbox {args.sandbox}).\n"
        f"{csv_path}; feedback/<student>/ for the students; graded/<student>/ for you."
    )
    print(class_reports.summary(grades, strays, header))
    return 0


def command_gradescope(args: argparse.Namespace) -> int:
    from labutils.course import gradescope, runner

    source = Path(args.source or runner.NOTEBOOK_FOLDER)
    bundle = gradescope.build_bundle(
        source, runner.NOTEBOOK_FOLDER.parent, args.out, args.timeout, args.profile
    )
    print(
        f"wrote {bundle}: upload it as the autograder of a Gradescope programming assignment "
        f"(Ubuntu base image). Students submit their .ipynb files."
    )
    return 0


def _add_profile_and_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default="smoke",
        choices=profiles.PROFILE_NAMES,
        help="smoke: tiny synthetic data, seconds per notebook (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="time limit per cell: a cell past it fails its exercise as timed out "
        "(default: %(default)s)",
    )


def _add_student(commands) -> None:
    student = commands.add_parser(
        "student",
        help="write the student edition of the notebooks (nbgrader stubs, no outputs)",
        description="Write the student edition: every solution region replaced by nbgrader's "
        "stub, outputs cleared, hidden tests removed, with nbgrader's own preprocessors; and "
        "checks.json beside it, the checks as written, for the self-check.",
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


def _add_check(commands) -> None:
    check = commands.add_parser(
        "check",
        help="self-check: run notebooks and report every exercise",
        description="Execute each notebook in a fresh kernel (an error in one cell does not "
        "stop the rest) with the checks as the instructor wrote them (from checks.json beside "
        "the notebook, or --source), and print one line per exercise: passed, failed (with the "
        "check's message), not attempted or timed out, then the points. Exit 0 only when "
        "every check passes.",
    )
    check.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    _add_profile_and_timeout(check)
    check.add_argument(
        "--source",
        type=Path,
        default=None,
        help="where the checks come from: a folder of solution notebooks (hidden tests "
        "included) or a checks.json (default: the checks.json beside each notebook)",
    )
    check.add_argument(
        "--results-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write Gradescope's autograder results.json (one test per check)",
    )
    check.set_defaults(handler=command_check)


def _add_grade(commands) -> None:
    from labutils.course.sandbox import SANDBOXES

    grade = commands.add_parser(
        "grade",
        help="grade a class: one folder per student -> grades.csv, feedback, a summary",
        description="Grade every student's notebooks with the checks of the solution edition "
        "(hidden tests included), each in a fresh kernel in a scratch folder of its own. "
        "Writes OUT/grades.csv, OUT/feedback/<student>/<notebook>.md and the executed "
        "notebooks in OUT/graded/<student>/. See docs/grading.md for what the isolation does "
        "and does not stop.",
    )
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS")
    grade.add_argument("--out", type=Path, required=True, help="folder for the results")
    _add_profile_and_timeout(grade)
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at a time")
    grade.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder of solution notebooks (default: the lab's notebooks/)",
    )
    grade.add_argument(
        "--memory-gb",
        type=float,
        default=8.0,
        help="address-space limit of each kernel, in GB; 0 for none (default: %(default)s)",
    )
    grade.add_argument(
        "--sandbox",
        default="none",
        choices=SANDBOXES,
        help="bwrap: run each kernel inside bubblewrap (no network, no files but its own, "
        "the system's and the lab's) (default: %(default)s)",
    )
    grade.set_defaults(handler=command_grade)


def _add_gradescope(commands) -> None:
    bundle = commands.add_parser(
        "gradescope",
        help="write Gradescope's autograder bundle (setup.sh, run_autograder, the lab)",
        description="Write the zip to upload as a Gradescope autograder: it installs the lab, "
        "and grades each submission's notebooks with the solution edition's checks into "
        "results.json.",
    )
    bundle.add_argument("--out", type=Path, default=Path("autograder.zip"))
    bundle.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder of solution notebooks (default: the lab's notebooks/)",
    )
    _add_profile_and_timeout(bundle)
    bundle.set_defaults(handler=command_gradescope)


def add_commands(commands) -> None:
    _add_student(commands)
    _add_check(commands)
    _add_grade(commands)
    _add_gradescope(commands)
