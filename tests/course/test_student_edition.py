"""The lab's own notebooks as students get them: no solution in the student edition, every
lesson cell runs on a blank one and no check passes, nbgrader makes the same edition."""

import shutil
import subprocess
import sys

import nbformat
import pytest
from lessons import execute_for_check, nbgrader

from labutils.course import execution, results, runner

LAB = sorted(runner.NOTEBOOK_FOLDER.glob("*.ipynb"))


def solution_lines(cell) -> list[str]:
    """The substantial lines between a cell's solution markers."""
    lines, inside = [], False
    for line in cell.source.splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            inside = "BEGIN" in line
        elif inside and len(line.strip()) > 12 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def graded(path) -> dict:
    """The lab notebook's nbgrader cells, by grade id."""
    notebook = nbformat.read(path, as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell
        for cell in notebook.cells
        if "nbgrader" in cell.metadata
    }


@pytest.fixture(scope="module")
def student_folder(tmp_path_factory):
    """``python -m labutils student``, as ``make student`` runs it."""
    out = tmp_path_factory.mktemp("student")
    result = subprocess.run(
        [sys.executable, "-m", "labutils", "student", "--out", out],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_every_lab_notebook_has_checks_and_a_written_question():
    for path in LAB:
        kinds = [
            ("check" if cell.cell_type == "code" else "written")
            for cell in graded(path).values()
            if cell.metadata["nbgrader"]["grade"]
        ]
        assert kinds.count("check") >= 2 and kinds.count("written") >= 1, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", LAB, ids=lambda path: path.stem)
def test_the_student_edition_holds_no_solution_no_hidden_test_and_no_output(student_folder, path):
    student = nbformat.read(student_folder / path.name, as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    assert "SOLUTION" not in text and "HIDDEN TESTS" not in text
    for cell in student.cells:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
    student_cells = graded(student_folder / path.name)
    for grade_id, cell in graded(path).items():
        student_lines = {line.strip() for line in student_cells[grade_id].source.splitlines()}
        for line in solution_lines(cell):
            assert line not in student_lines, f"{grade_id}: {line}"


@pytest.mark.slow
@pytest.mark.parametrize("path", LAB, ids=lambda path: path.stem)
def test_a_blank_student_edition_runs_to_the_end_and_passes_no_check(
    student_folder, path, request, tmp_path
):
    run_dir = tmp_path / "runs"
    if execution.reads_runs(nbformat.read(path, as_version=4)):  # runs to compare: the session's
        shutil.copytree(request.getfixturevalue("smoke_run")[1], run_dir)  # smoke series
    executed = execute_for_check(student_folder / path.name, run_dir)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        nbgrader_cell = cell.metadata.get("nbgrader", {})
        error = results.error_message(cell)
        if nbgrader_cell.get("grade"):
            assert error, f"{nbgrader_cell['grade_id']} passes on a blank notebook"
        elif not nbgrader_cell.get("solution"):
            assert error is None, f"{path.name}: a lesson cell failed: {error}\n{cell.source}"
    outcome = results.grade_executed(executed)
    assert {result.status for result in outcome} == {"not attempted"}


@pytest.mark.slow
def test_nbgrader_generate_assignment_gives_the_same_student_edition(student_folder, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(runner.NOTEBOOK_FOLDER, course / "source" / "lab")
    nbgrader(course, "generate_assignment", "lab")
    for path in LAB:
        released = nbformat.read(course / "release" / "lab" / path.name, as_version=4)
        ours = nbformat.read(student_folder / path.name, as_version=4)
        assert [c.source for c in released.cells] == [c.source for c in ours.cells], path.name


def test_every_check_cell_lets_run_all_go_on_past_it():
    for path in LAB:
        for grade_id, cell in graded(path).items():
            if cell.cell_type == "code" and cell.metadata["nbgrader"]["grade"]:
                tags = cell.metadata.get("tags", [])
                assert "raises-exception" in tags, f"{path.name}: {grade_id}"
