"""A class at once: ``python -m labutils grade SUBMISSIONS --out OUT``.

SUBMISSIONS holds one folder per student, named for the student, with that student's
notebooks anywhere inside it, found by file name (nbgrader's ``submitted/<student>/<assignment>/``
layout works as it is). Each notebook is graded in a fresh kernel of its own, ``jobs`` at a
time, in a scratch folder (see ``sandbox``). The reports are written by ``class_reports``.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labutils.course import execution, sandbox, submissions
from labutils.course.submissions import NotebookGrade

SCRATCH = ".scratch"  # inside OUT, removed when grading ends


@dataclass
class ClassFolder:
    """Who submitted which notebook, and the files that match no notebook of the lab."""

    notebooks: dict[str, dict[str, Path]]  # student -> notebook name -> path
    names: list[str]  # the notebooks graded: those of the source that anyone submitted
    strays: list[str] = field(default_factory=list)


def _student_folders(submissions_folder: Path) -> list[Path]:
    folder = Path(submissions_folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder: give the folder that holds one folder per student."
        )
    if (folder / "submitted").is_dir():  # an nbgrader course folder
        folder = folder / "submitted"
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_submissions(submissions_folder: Path, source_names: list[str]) -> ClassFolder:
    """Each student's notebooks, matched to the source's notebooks by file name."""
    found: dict[str, dict[str, Path]] = {}
    strays = []
    for student_folder in _student_folders(submissions_folder):
        found[student_folder.name] = {}
        for path in sorted(student_folder.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            if path.name in source_names and path.name not in found[student_folder.name]:
                found[student_folder.name][path.name] = path
            else:
                strays.append(f"{student_folder.name}: {path.relative_to(student_folder)}")
    names = sorted({name for notebooks in found.values() for name in notebooks})
    if not names:
        raise FileNotFoundError(
            f"No notebook in {submissions_folder} is named like one of the lab's "
            f"({', '.join(source_names)}): each student's folder should hold them by their names."
        )
    return ClassFolder(found, names, strays)


def not_submitted(reference, student: str, name: str) -> NotebookGrade:
    """Every exercise of a notebook the student did not hand in: not attempted."""
    grade = submissions.failed_grade(reference, student, name, "not submitted")
    for result in grade.results:
        result.status = "not attempted"
    return grade


@dataclass
class Grading:
    """Everything one grading of a class needs besides the submissions."""

    source: Path
    out: Path
    limits: sandbox.Limits
    profile: str = "smoke"
    runs: Path | None = None  # trained runs for notebooks that compare them (04)


def _grade_one(grading: Grading, reference, student: str, path: Path) -> NotebookGrade:
    """One student's notebook, in a scratch folder of its own."""
    scratch = sandbox.scratch_folder(grading.out / SCRATCH, student, path.stem)
    if grading.runs is not None:
        shutil.copytree(grading.runs, scratch / "runs")
    environment = sandbox.clean_environment(scratch, grading.profile, grading.limits.threads)
    parameters = {"PROFILE": grading.profile, "RUN_DIR": str(scratch / "runs")}
    try:
        return submissions.grade_submission(
            path, reference, student, scratch, scratch, environment, grading.limits, parameters
        )
    except Exception as error:  # one broken submission must not stop the class
        message = f"could not be graded: {type(error).__name__}: {error}"
        return submissions.failed_grade(reference, student, path.name, message)


def _runs_if_needed(grading: Grading, names: list[str]) -> None:
    """Train the small runs once when a notebook compares runs (04), on the smoke profile."""
    needs = [
        name
        for name in names
        if execution.reads_runs(nbformat.read(grading.source / name, as_version=4))
    ]
    if needs and grading.profile == "smoke":
        grading.runs = grading.out / SCRATCH / "runs"
        execution.train_smoke_runs(grading.runs)


def grade_class(
    submissions_folder: Path, grading: Grading, jobs: int
) -> tuple[list[NotebookGrade], list[str]]:
    """Grade every student's notebooks, ``jobs`` at a time: the grades, and files not graded."""
    source_names = sorted(p.name for p in Path(grading.source).glob("*.ipynb"))
    folder = find_submissions(submissions_folder, source_names)
    references = {name: submissions.load_reference(grading.source, name) for name in folder.names}
    grading.limits.threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    _runs_if_needed(grading, folder.names)
    tasks, grades = [], []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for student, notebooks in folder.notebooks.items():
            for name in folder.names:
                if name in notebooks:
                    task = pool.submit(
                        _grade_one, grading, references[name], student, notebooks[name]
                    )
                    tasks.append(task)
                else:
                    grades.append(not_submitted(references[name], student, name))
        grades += [task.result() for task in tasks]
    shutil.rmtree(grading.out / SCRATCH, ignore_errors=True)
    grades.sort(key=lambda grade: (grade.student, grade.notebook))
    return grades, folder.strays
