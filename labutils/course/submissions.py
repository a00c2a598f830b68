"""Grading one submitted notebook: read it, put the original checks back, run it, grade it.

Whatever is wrong with a file (not JSON, not a notebook, another assignment's notebook) is
reported by name with every exercise marked ``error``; nothing about one file stops the others.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labutils.course import execution, originals, sandbox
from labutils.course.results import ExerciseResult, grade_executed


@dataclass
class NotebookGrade:
    """What one student's notebook earned, what was put right, and the executed notebook."""

    student: str
    notebook: str
    results: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)
    error: str = ""  # why the notebook could not be graded at all
    seconds: float = 0.0
    executed: nbformat.NotebookNode | None = None


def load_reference(source: Path, name: str) -> originals.Reference | None:
    """The checks of notebook ``name`` from a solution folder or a ``checks.json``."""
    from labutils.course.grading import student_edition

    source = Path(source)
    if source.is_dir() and (source / name).is_file():
        solution = nbformat.read(source / name, as_version=4)
        return originals.reference_from_solution(solution, name, student_edition(solution))
    checks = source if source.is_file() else source / originals.CHECKS_FILE
    if checks.is_file():
        return originals.reference_from_checks_file(checks, name)
    return None


class UnreadableSubmission(ValueError):
    """A submitted file that is not a notebook."""


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``; a file that is not one raises with what it is instead."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableSubmission(f"{Path(path).name} cannot be read as text: {error}") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableSubmission(
            f"{Path(path).name} is not a notebook: not JSON ({error.msg}, line {error.lineno}). "
            f"Was it saved from JupyterLab (File > Save) or renamed from another file?"
        ) from None
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for a malformed notebook
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnreadableSubmission(
            f"{Path(path).name} is JSON but not a valid notebook: {first_line[:200]}"
        ) from None
    return notebook


def failed_grade(
    reference: originals.Reference | None, student: str, name: str, message: str
) -> NotebookGrade:
    """Every exercise of the notebook marked ``error`` with ``message``."""
    results = []
    for cell in reference.cells if reference else []:
        if not originals.grading_metadata(cell).get("grade"):
            continue  # an answer cell: its check carries the points
        kind = "check" if cell.cell_type == "code" else "written"
        points = float(originals.grading_metadata(cell).get("points", 0))
        results.append(ExerciseResult(originals.grade_id(cell), kind, points, "error", message))
    return NotebookGrade(student, name, results, error=message)


def prepared(
    path: Path, reference: originals.Reference | None, scratch: Path
) -> tuple[Path, list[str]]:
    """The submission with the original checks, written into ``scratch``; and the notes."""
    notebook = read_submission(path)
    notes: list[str] = []
    if reference is not None:
        restored = originals.restore(notebook, reference)
        notebook, notes = restored.notebook, restored.notes
    target = Path(scratch) / Path(path).name
    nbformat.write(notebook, target)
    return target, notes


def grade_submission(
    path: Path,
    reference: originals.Reference | None,
    student: str,
    scratch: Path,
    run_in: Path,
    environment: dict,
    limits: sandbox.Limits,
    parameters: dict,
) -> NotebookGrade:
    """Grade the notebook at ``path`` with the reference's checks, run in ``run_in``."""
    start, name = time.perf_counter(), Path(path).name
    try:
        target, notes = prepared(path, reference, scratch)
    except (UnreadableSubmission, originals.WrongAssignment) as error:
        return failed_grade(reference, student, name, str(error))
    executed = execution.execute_notebook(target, run_in, parameters, environment, limits)
    grade = NotebookGrade(student, name, grade_executed(executed), notes, executed=executed)
    grade.seconds = time.perf_counter() - start
    return grade


def self_check(
    path: Path, source: Path | None, profile: str = "smoke", timeout: int = 900
) -> NotebookGrade:
    """A student's check of one notebook: run where it lies, with the checks from ``source``.

    Without ``source``, the ``checks.json`` beside the notebook (written with the student
    edition) gives the checks; without one either, the checks run as the notebook holds them.
    """
    path, name = Path(path), Path(path).name
    beside = path.parent / originals.CHECKS_FILE
    reference = load_reference(source or beside, name) if source or beside.is_file() else None
    if source is not None and reference is None:
        return failed_grade(None, "you", name, f"{name} is not a notebook of {source}.")
    try:
        notebook = read_submission(path)
    except UnreadableSubmission as error:
        return failed_grade(reference, "you", name, str(error))
    scratch = Path(tempfile.mkdtemp(prefix="labutils-check-"))
    parameters, environment, limits = execution.self_check_conditions(
        notebook, scratch / "runs", profile, timeout
    )
    try:
        grade = grade_submission(
            path, reference, "you", scratch, path.resolve().parent, environment, limits, parameters
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if reference is None:
        grade.notes.append(
            f"no {originals.CHECKS_FILE} beside it: the checks ran as the notebook holds them."
        )
    return grade
