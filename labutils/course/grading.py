"""Exercises as nbgrader knows them: the cells' metadata, the student edition, the self-check.

The notebooks in ``notebooks/`` are the solution edition and the single source. Every exercise
is marked as nbgrader marks it, so an instructor can put the notebooks into an nbgrader course
unchanged:

- an *answer* cell (code) holds the solution between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``; nbgrader replaces that region with a stub in the student edition;
- a *check* cell (code, locked) holds ``assert``s worth some points; an optional region
  between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed for students;
- a *written* answer cell (markdown) is graded by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labutils.course import install_cell

SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
CODE_STUB = "raise NotImplementedError()"  # the last line of nbgrader's Python stub
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's stub for a written answer


def nbgrader_metadata(kind: str, grade_id: str, points: float = 0) -> dict:
    """nbgrader's cell metadata for an ``answer``, ``check`` or ``written`` cell."""
    if kind not in ("answer", "check", "written"):
        raise ValueError(f"kind = {kind!r}: use 'answer', 'check' or 'written'.")
    metadata = {
        "grade": kind != "answer",
        "grade_id": grade_id,
        "locked": kind == "check",
        "schema_version": SCHEMA_VERSION,
        "solution": kind != "check",
        "task": False,
    }
    if kind != "answer":
        metadata["points"] = points
    return metadata


def answer_cell(source: str, grade_id: str) -> nbformat.NotebookNode:
    """A code cell the student completes; ``source`` marks the solution region."""
    if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
        raise ValueError(f"answer cell {grade_id!r} needs ### BEGIN SOLUTION / ### END SOLUTION")
    return nbformat.v4.new_code_cell(
        source, metadata={"nbgrader": nbgrader_metadata("answer", grade_id)}
    )


def check_cell(source: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """A locked code cell of ``assert``s worth ``points``."""
    return nbformat.v4.new_code_cell(
        source, metadata={"nbgrader": nbgrader_metadata("check", grade_id, points)}
    )


def written_cell(source: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """A markdown cell the student writes an answer in, graded by hand."""
    return nbformat.v4.new_markdown_cell(
        source, metadata={"nbgrader": nbgrader_metadata("written", grade_id, points)}
    )


def _student_preprocessors() -> list:
    """nbgrader's ``generate_assignment`` pipeline, in its order, without the gradebook database."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    return [
        LockCells(),
        ClearSolutions(),
        ClearOutput(),
        CheckCellMetadata(),
        ComputeChecksums(),
        ClearHiddenTests(),
        ClearMarkScheme(),
        ComputeChecksums(),
        CheckCellMetadata(),
    ]


def student_edition(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's copy of a solution notebook: solutions stubbed, no outputs, no hidden tests."""
    notebook = nbformat.from_dict(notebook)  # a copy: the preprocessors work in place
    resources: dict = {}
    for preprocessor in _student_preprocessors():
        notebook, resources = preprocessor.preprocess(notebook, resources)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
    return notebook


def write_student_edition(source: Path, out: Path, package: str | None = None) -> list[Path]:
    """Write the student edition of every notebook in ``source`` into ``out``; return the paths.

    ``package``: where the notebooks' install cell installs the lab from outside the repository.
    """
    notebooks = sorted(Path(source).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(
            f"No notebook (*.ipynb) in {Path(source).resolve()}: point "
            f"--source at the lab's notebooks/ folder."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student = student_edition(nbformat.read(path, as_version=4))
        if package is not None:
            install_cell.set_package_source(student, package, path.name)
        nbformat.write(student, out / path.name)
        written.append(out / path.name)
    return written


# --------------------------------------------------------------------------- the self-check


@dataclass
class ExerciseResult:
    """What the self-check found for one graded cell: a check, or a written answer."""

    grade_id: str
    kind: str  # "check" | "written"
    points: float
    status: (
        str  # check: "passed" | "failed" | "not attempted"; written: "answered" | "not attempted"
    )
    message: str = ""

    @property
    def earned(self) -> float:
        return self.points if self.status == "passed" else 0.0


def _grading(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _error_message(cell) -> str | None:
    """``Name: message`` of the error a code cell raised, or None if it ran cleanly."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            evalue = output.get("evalue", "")
            return f"{output.get('ename', 'Error')}: {evalue}" if evalue else output.get("ename")
    return None


def grade_executed(notebook: nbformat.NotebookNode) -> list[ExerciseResult]:
    """One result per graded cell of an executed notebook, in order.

    A check tests the answer cells above it, back to the previous answer cell that follows a
    check (several checks may test one answer). It is *not attempted* while one of those still
    holds nbgrader's stub; otherwise it passed if it ran without an error, else it failed with
    the error's message. A written answer is *answered* unless it still holds the text stub.
    """
    results, stubbed, after_check = [], False, False
    for cell in notebook.cells:
        grading = _grading(cell)
        if not grading:
            continue
        grade_id, points = grading.get("grade_id", "?"), float(grading.get("points", 0))
        if cell.cell_type == "markdown" and grading.get("grade"):
            blank = TEXT_STUB in cell.source or not cell.source.strip()
            results.append(
                ExerciseResult(
                    grade_id, "written", points, "not attempted" if blank else "answered"
                )
            )
        elif cell.cell_type == "code" and grading.get("grade"):
            error = _error_message(cell)
            status = "not attempted" if stubbed else "failed" if error else "passed"
            message = error if status == "failed" else ""
            results.append(ExerciseResult(grade_id, "check", points, status, message or ""))
            after_check = True
        elif cell.cell_type == "code" and grading.get("solution"):
            if after_check:  # a new exercise begins
                stubbed, after_check = False, False
            stubbed = stubbed or CODE_STUB in cell.source
    return results


def _reads_runs(notebook: nbformat.NotebookNode) -> bool:
    """Whether the notebook compares trained runs (notebook 04 does) and so needs some first."""
    return any(
        "runs.find_runs(" in cell.source for cell in notebook.cells if cell.cell_type == "code"
    )


def train_smoke_runs(run_dir: Path, models: tuple[str, ...] = ("mlp", "cnn", "resnet9")) -> None:
    """Small runs of each model on the smoke profile, with the lab's own ``train`` command."""
    for model in models:
        command = [
            sys.executable,
            "-m",
            "labutils",
            "train",
            "--model",
            model,
            "--profile",
            "smoke",
            "--out",
            str(run_dir / model),
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "LABUTILS_PROGRESS": "0"}
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"The self-check trains small {model} runs for the comparison notebook first, and "
                f"that failed:\n{result.stderr[-2000:]}\nRun `{' '.join(command[1:])}` to see "
                f"why; the installation of labutils may be broken (make install)."
            )


def execute_for_check(
    path: Path, profile: str = "smoke", run_dir: Path | None = None, timeout: int = 900
) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel, errors allowed in every cell; return it executed.

    The notebook runs in its own folder with ``PROFILE`` set to ``profile`` and ``RUN_DIR`` to
    ``run_dir`` (a scratch folder by default), so the check never touches the student's runs.
    """
    from nbclient import NotebookClient
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from labutils.course.jupyter_kernels import LocalKernelManager

    notebook = load_notebook_node(str(path))  # as papermill reads it: every cell has tags
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="labutils-check-"))
    if _reads_runs(notebook) and not any(run_dir.glob("*/history.json")):
        train_smoke_runs(run_dir)
    notebook = parameterize_notebook(
        notebook,
        {"PROFILE": profile, "RUN_DIR": str(run_dir)},
        kernel_name="python3",
        language="python",
    )
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        kernel_manager_class=LocalKernelManager,
        resources={"metadata": {"path": str(Path(path).resolve().parent)}},
    )
    client.execute(env={**os.environ, "LABUTILS_PROFILE": profile, "LABUTILS_PROGRESS": "0"})
    return notebook


def _result_line(result: ExerciseResult, width: int) -> str:
    if result.kind == "written":
        points = f"{result.points:g} pt, graded by your instructor"
    else:
        points = f"{result.earned:g}/{result.points:g} pt"
    line = f"  {result.status:<14}{result.grade_id:<{width}}{points}"
    return line + (f"\n      {result.message}" if result.message else "")


def format_results(name: str, results: list[ExerciseResult]) -> str:
    """The self-check's report: one line per exercise, then the points of the checks."""
    checks = [result for result in results if result.kind == "check"]
    passed = sum(result.status == "passed" for result in checks)
    width = max((len(result.grade_id) for result in results), default=0) + 2
    lines = [
        name,
        *(_result_line(result, width) for result in results),
        f"  points: {sum(r.earned for r in checks):g} of {sum(r.points for r in checks):g}"
        f" ({passed} of {len(checks)} checks passed)",
    ]
    return "\n".join(lines)


def all_passed(results: list[ExerciseResult]) -> bool:
    """True when every check passed (written answers are graded by hand and do not count)."""
    return all(result.status == "passed" for result in results if result.kind == "check")
