"""Exercises as nbgrader knows them: the cells' metadata and the student edition.

The notebooks in ``notebooks/`` are the solution edition and the single source. Every exercise
is marked as nbgrader marks it, so an instructor can put the notebooks into an nbgrader course
unchanged:

- an *answer* cell (code) holds the solution between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``; nbgrader replaces that region with a stub in the student edition;
- a *check* cell (code, locked) holds ``assert``s worth some points; an optional region
  between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed for students;
- a *written* answer cell (markdown) is graded by hand.

Check cells carry the ``raises-exception`` tag, so that Run All in JupyterLab goes on past a
failing check (its error stays visible); the student edition gives the tag to answer cells
too, whose stub raises until the student writes the answer. Grading and the self-check live in
``results``, ``originals``, ``execution`` and ``submissions``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from labutils.course import install_cell, originals
from labutils.course.results import CODE_STUB, TEXT_STUB  # noqa: F401 - nbgrader's stubs

SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
RUN_ALL_GOES_ON = "raises-exception"  # the tag JupyterLab, nbclient and nbval let raise


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
    """A locked code cell of ``assert``s worth ``points``; Run All goes on past its failure."""
    return nbformat.v4.new_code_cell(
        source,
        metadata={
            "nbgrader": nbgrader_metadata("check", grade_id, points),
            "tags": [RUN_ALL_GOES_ON],
        },
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
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            _tag(cell, RUN_ALL_GOES_ON)  # the stub raises until the student answers
    return notebook


def _tag(cell, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def write_student_edition(source: Path, out: Path, package: str | None = None) -> list[Path]:
    """Write the student edition of every notebook in ``source`` into ``out``; return the paths.

    Beside the notebooks goes ``checks.json``: their check cells as written, no solution and no
    hidden test, from which ``labutils check`` puts back a check a student changed.
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
    written, students = [], {}
    for path in notebooks:
        students[path.name] = student_edition(nbformat.read(path, as_version=4))
        if package is not None:
            install_cell.set_package_source(students[path.name], package, path.name)
        nbformat.write(students[path.name], out / path.name)
        written.append(out / path.name)
    written.append(originals.write_checks_file(students, out))
    return written
