"""Checks from the source, not from the submission: what a submitted notebook is graded with.

A student may edit, empty or delete a check cell; a check that reads ``pass`` would otherwise
earn its points. Before a submission runs, every check cell is put back as the instructor
wrote it, matched by nbgrader's ``grade_id``; a cell whose checksum (nbgrader's, of the
student-edition cell) differs from the original's is reported as changed. The originals come
from one of two places:

- the solution edition (``notebooks/``), when an instructor grades: hidden tests included;
- ``checks.json``, which ``python -m labutils student`` writes beside the student edition: the
  visible checks only, no solution, for a student's own ``labutils check``.

Answer cells keep the student's code; their nbgrader metadata is the original's too, so points
cannot be raised from inside a submission. Answers missing, duplicated or moved are reported.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CHECKS_FILE = "checks.json"  # written beside the student edition
CHECKS_FORMAT = "labutils-checks 1"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def grading_metadata(cell) -> dict:
    """A cell's nbgrader metadata ({} for a lesson cell)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return grading_metadata(cell).get("grade_id")


def is_check(cell) -> bool:
    """A graded code cell: ``assert``s worth points."""
    return cell.get("cell_type") == "code" and bool(grading_metadata(cell).get("grade"))


def checksum(cell) -> str | None:
    """nbgrader's checksum of a graded cell, or None when its metadata is incomplete."""
    from nbgrader.utils import compute_checksum

    try:
        return compute_checksum(nbformat.from_dict(cell))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def hidden_lines(source: str) -> tuple[int, int] | None:
    """First and last line (1-based) of a check's hidden tests, markers included."""
    lines = source.splitlines()
    begin = next((i for i, line in enumerate(lines) if HIDDEN_BEGIN in line), None)
    end = next((i for i, line in enumerate(lines) if HIDDEN_END in line), None)
    return None if begin is None or end is None else (begin + 1, end + 1)


@dataclass
class Reference:
    """The graded cells of one notebook as the instructor wrote them, in order."""

    name: str
    cells: list  # graded cells; a check's source is the one graded
    checksums: dict[str, set]  # grade_id -> checksums of the cell as given out (either edition)

    @property
    def order(self) -> list[str]:
        return [grade_id(cell) for cell in self.cells]

    def cell(self, identifier: str):
        return next(cell for cell in self.cells if grade_id(cell) == identifier)

    def kind(self, identifier: str) -> str:
        cell = self.cell(identifier)
        return "check" if is_check(cell) else "answer" if cell.cell_type == "code" else "written"


def reference_from_solution(
    notebook: nbformat.NotebookNode, name: str, student: nbformat.NotebookNode
) -> Reference:
    """The reference of a solution notebook (checks with hidden tests) and its student edition."""
    cells = [copy.deepcopy(cell) for cell in notebook.cells if grade_id(cell)]
    checksums = {grade_id(cell): {checksum(cell)} for cell in cells}  # the solution as a submission
    for cell in student.cells:
        if grade_id(cell):
            checksums[grade_id(cell)].add(grading_metadata(cell).get("checksum"))
    return Reference(name, cells, checksums)


def checks_entry(student: nbformat.NotebookNode) -> list[dict]:
    """What ``checks.json`` keeps of a student notebook: graded cells, no answer's code."""
    entry = []
    for cell in student.cells:
        if not grade_id(cell):
            continue
        source = cell.source if is_check(cell) else ""
        entry.append({"cell_type": cell.cell_type, "source": source, "metadata": cell.metadata})
    return entry


def write_checks_file(students: dict[str, nbformat.NotebookNode], folder: Path) -> Path:
    """Write ``checks.json`` for the student notebooks (by file name) into ``folder``."""
    payload = {
        "format": CHECKS_FORMAT,
        "about": "The checks of each notebook as the instructor wrote them. `python -m "
        "labutils check` runs these instead of the check cells a notebook holds.",
        "notebooks": {name: checks_entry(notebook) for name, notebook in students.items()},
    }
    path = Path(folder) / CHECKS_FILE
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def reference_from_checks_file(path: Path, name: str) -> Reference | None:
    """The reference of notebook ``name`` kept in a ``checks.json``; None if it has none."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if payload.get("format") != CHECKS_FORMAT:
        raise ValueError(
            f"{path} is not a checks file written by `python -m labutils student`: "
            f"write the student edition again."
        )
    entry = payload["notebooks"].get(name)
    if entry is None:
        return None
    cells = [nbformat.from_dict({**cell, "id": f"c{i}"}) for i, cell in enumerate(entry)]
    for cell in cells:
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
    checksums = {grade_id(cell): {grading_metadata(cell).get("checksum")} for cell in cells}
    return Reference(name, cells, checksums)


# ------------------------------------------------------------------------------ restoring


@dataclass
class Restored:
    """A submission with the original checks in place, and what had to be put right."""

    notebook: nbformat.NotebookNode
    changed: set[str] = field(default_factory=set)  # checks edited or deleted by the student
    notes: list[str] = field(default_factory=list)  # for the student and the instructor


class WrongAssignment(ValueError):
    """The submission holds none of the reference's exercises."""


def _original_check(reference: Reference, identifier: str, changed: bool):
    """A fresh copy of the original check cell, marked for the grader."""
    cell = copy.deepcopy(reference.cell(identifier))
    cell.outputs, cell.execution_count = [], None
    cell.id = f"original-{identifier}"[:64]  # unique: a submission's own ids stay as they are
    span = hidden_lines(cell.source)
    cell.metadata["labutils"] = {"hidden_lines": list(span) if span else None, "changed": changed}
    return cell


def _restore_cells(submission, reference: Reference, restored: Restored) -> list:
    """The submission's cells with every present check replaced by its original."""
    cells, seen = [], set()
    for cell in submission.cells:
        cell.metadata.pop("labutils", None)  # only the grader writes this
        identifier = grade_id(cell)
        if identifier is None:
            cells.append(cell)
        elif identifier not in reference.order:
            cell.metadata.pop("nbgrader")  # not an exercise of this notebook: graded as a lesson
            restored.notes.append(f"{identifier} is not an exercise of {reference.name}: ignored.")
            cells.append(cell)
        elif reference.kind(identifier) == "check":
            if identifier in seen:
                restored.notes.append(f"{identifier} appears twice: the copy was left out.")
                continue
            changed = checksum(cell) not in reference.checksums.get(identifier, set())
            if changed:
                restored.changed.add(identifier)
                restored.notes.append(
                    f"{identifier} was changed in the submission: graded with the original."
                )
            cells.append(_original_check(reference, identifier, changed))
        else:
            if identifier in seen:
                restored.notes.append(f"{identifier} appears twice: both ran, the later counts.")
            cell.metadata["nbgrader"] = copy.deepcopy(grading_metadata(reference.cell(identifier)))
            cells.append(cell)
        seen.add(identifier)
    return cells


def _put_back_deleted(cells: list, reference: Reference, restored: Restored) -> None:
    """Insert each deleted check after the nearest graded cell that precedes it in the original."""
    present = {grade_id(cell) for cell in cells}
    for position, identifier in enumerate(reference.order):
        if identifier in present or reference.kind(identifier) != "check":
            continue
        before = [i for i in reference.order[:position] if i in present]
        index = len(cells)
        if before:
            index = max(k for k, cell in enumerate(cells) if grade_id(cell) == before[-1]) + 1
        cells.insert(index, _original_check(reference, identifier, changed=True))
        present.add(identifier)
        restored.changed.add(identifier)
        restored.notes.append(
            f"{identifier} was deleted from the submission: put back and graded as the original."
        )


def _report_answers(cells: list, reference: Reference, restored: Restored) -> None:
    """Note answer cells that are missing or out of their original order."""
    order = [grade_id(cell) for cell in cells if grade_id(cell)]
    for identifier in reference.order:
        if reference.kind(identifier) != "check" and identifier not in order:
            restored.notes.append(
                f"{identifier} (an answer cell) is missing from the submission: its check ran "
                f"without it."
            )
    furthest = -1
    for identifier in dict.fromkeys(order):  # first appearances
        position = reference.order.index(identifier)
        if position < furthest and reference.kind(identifier) != "check":
            restored.notes.append(f"{identifier} was moved: it ran where the submission has it.")
        furthest = max(furthest, position)


def restore(submission: nbformat.NotebookNode, reference: Reference) -> Restored:
    """The submission with the reference's checks in place of its own, and what was put right."""
    submission = copy.deepcopy(submission)
    if not any(grade_id(cell) in reference.order for cell in submission.cells):
        others = sorted({grade_id(cell) for cell in submission.cells if grade_id(cell)})
        held = f"it holds {', '.join(others[:3])}" if others else "it holds no exercise at all"
        raise WrongAssignment(
            f"this is not {reference.name}: none of its exercises are here ({held}). "
            f"Was another notebook saved under this name?"
        )
    restored = Restored(submission)
    cells = _restore_cells(submission, reference, restored)
    _put_back_deleted(cells, reference, restored)
    _report_answers(cells, reference, restored)
    submission.cells = cells
    return restored
