"""What a graded notebook earned: one result per exercise, read from the executed cells.

A check passed when its cell ran without an error. It is *not attempted* while an answer it
tests still holds nbgrader's stub, *timed out* when it (or that answer) ran past the time limit,
and an *error* when the kernel died under it. A check that fails inside the instructor's hidden
tests says only that a hidden test failed: its text never reaches a student.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat

CODE_STUB = "raise NotImplementedError()"  # the last line of nbgrader's Python stub
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's stub for a written answer
TIMED_OUT = "CellTimeout"  # the error name the grader writes into a cell that ran too long
KERNEL_DIED = "KernelDied"  # ... and into a cell whose kernel died
HIDDEN_FAILED = (
    "a hidden test failed: your answer passes the checks you can see but not all of the "
    "instructor's; try the cases the visible checks leave out."
)
CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class ExerciseResult:
    """One graded cell's outcome: a check, or a written answer graded by hand."""

    grade_id: str
    kind: str  # "check" | "written"
    points: float
    # a check: passed, failed, not attempted, timed out or error; written: answered, not attempted
    status: str
    message: str = ""
    changed: bool = False  # the submission's check cell was edited or deleted (graded as original)

    @property
    def earned(self) -> float:
        return self.points if self.status == "passed" else 0.0

    @property
    def table_status(self) -> str:
        """The status as grades.csv writes it."""
        if self.kind == "written":
            return "manual"
        return "changed check" if self.changed else self.status


def grading_of(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def error_output(cell) -> dict | None:
    """The error output of a code cell, or None if it ran cleanly; the grader's own first."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    marked = [o for o in errors if o.get("ename") in (TIMED_OUT, KERNEL_DIED)]
    return (marked or errors or [None])[0]


def error_message(cell) -> str | None:
    """``Name: message`` of the error a code cell raised, or None if it ran cleanly."""
    output = error_output(cell)
    if output is None:
        return None
    evalue = output.get("evalue", "")
    return f"{output.get('ename', 'Error')}: {evalue}" if evalue else output.get("ename", "Error")


def failed_in_hidden_tests(cell, output: dict) -> bool:
    """Whether the check's error was raised on a line of its hidden tests."""
    span = cell.get("metadata", {}).get("labutils", {}).get("hidden_lines")
    if not span:
        return False
    for frame in output.get("traceback", []):
        found = CELL_LINE.search(ANSI.sub("", frame))
        if found:
            return span[0] <= int(found[1]) <= span[1]
    return True  # no line to go by: say nothing of the cell's text


def _check_outcome(cell, stubbed: bool, answer_problem: str) -> tuple[str, str]:
    """Status and message of one executed check cell."""
    output = error_output(cell)
    name = output.get("ename") if output else None
    if name == TIMED_OUT or (answer_problem and answer_problem.startswith("timed")):
        return "timed out", output.get("evalue", "") if name == TIMED_OUT else answer_problem
    if name == KERNEL_DIED or answer_problem:
        return "error", output.get("evalue", "") if name == KERNEL_DIED else answer_problem
    if stubbed:
        return "not attempted", ""
    if output is None:
        return "passed", ""
    if failed_in_hidden_tests(cell, output):
        return "failed", HIDDEN_FAILED
    return "failed", error_message(cell) or ""


def _answer_problem(cell) -> str:
    """What went wrong in an answer cell beyond an ordinary error: a timeout, a dead kernel."""
    output = error_output(cell)
    if output and output.get("ename") == TIMED_OUT:
        return f"timed out: your answer cell {grading_of(cell).get('grade_id')} {output['evalue']}"
    if output and output.get("ename") == KERNEL_DIED:
        return f"your answer cell {grading_of(cell).get('grade_id')}: {output['evalue']}"
    return ""


def _written_result(cell, grading: dict) -> ExerciseResult:
    blank = TEXT_STUB in cell.source or not cell.source.strip()
    status = "not attempted" if blank else "answered"
    return ExerciseResult(grading["grade_id"], "written", float(grading.get("points", 0)), status)


def grade_executed(notebook: nbformat.NotebookNode) -> list[ExerciseResult]:
    """One result per graded cell of an executed notebook, in order.

    A check tests the answer cells above it, back to the previous answer cell that follows a
    check (several checks may test one answer).
    """
    results, stubbed, after_check, problem = [], False, False, ""
    for cell in notebook.cells:
        grading = grading_of(cell)
        if not grading:
            continue
        if cell.cell_type == "markdown" and grading.get("grade"):
            results.append(_written_result(cell, grading))
        elif cell.cell_type == "code" and grading.get("grade"):
            status, message = _check_outcome(cell, stubbed, problem)
            changed = bool(cell.metadata.get("labutils", {}).get("changed"))
            identifier, points = grading.get("grade_id", "?"), float(grading.get("points", 0))
            results.append(ExerciseResult(identifier, "check", points, status, message, changed))
            after_check = True
        elif cell.cell_type == "code" and grading.get("solution"):
            if after_check:  # a new exercise begins
                stubbed, after_check, problem = False, False, ""
            stubbed = stubbed or CODE_STUB in cell.source
            problem = problem or _answer_problem(cell)
    return results


def _result_line(result: ExerciseResult, width: int) -> str:
    if result.kind == "written":
        points = f"{result.points:g} pt, graded by your instructor"
    else:
        points = f"{result.earned:g}/{result.points:g} pt"
    line = f"  {result.status:<14}{result.grade_id:<{width}}{points}"
    if result.changed:
        line += "  (check changed in the notebook: graded with the original)"
    return line + (f"\n      {result.message}" if result.message else "")


def format_results(name: str, results: list[ExerciseResult], notes: list[str] = ()) -> str:
    """The self-check's report: one line per exercise, notes, then the points of the checks."""
    checks = [result for result in results if result.kind == "check"]
    passed = sum(result.status == "passed" for result in checks)
    width = max((len(result.grade_id) for result in results), default=0) + 2
    lines = [
        name,
        *(_result_line(result, width) for result in results),
        *(f"  note: {note}" for note in notes),
        f"  points: {sum(r.earned for r in checks):g} of {sum(r.points for r in checks):g}"
        f" ({passed} of {len(checks)} checks passed)",
    ]
    return "\n".join(lines)


def check_points(results: list[ExerciseResult]) -> tuple[float, float]:
    """Earned and possible points of the automatic checks."""
    checks = [result for result in results if result.kind == "check"]
    return sum(r.earned for r in checks), sum(r.points for r in checks)


def all_passed(results: list[ExerciseResult]) -> bool:
    """True when every check passed (written answers are graded by hand and do not count)."""
    return all(result.status == "passed" for result in results if result.kind == "check")
