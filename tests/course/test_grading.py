"""Exercises as nbgrader marks them: the student edition and the self-check, on real kernels."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from lessons import (
    ANSWER,
    CHECK,
    WRITTEN,
    answered,
    autograded_score,
    check_index,
    execute_for_check,
    nbgrader,
    tiny_lesson,
)

from labutils.course import grading, results, runner


def execute(notebook: nbformat.NotebookNode, folder) -> list[results.ExerciseResult]:
    path = folder / "lesson.ipynb"
    nbformat.write(notebook, path)
    return results.grade_executed(execute_for_check(path, folder / "runs"))


def test_the_student_edition_holds_stubs_no_solution_and_no_hidden_test():
    student = grading.student_edition(tiny_lesson())
    text = "\n".join(cell.source for cell in student.cells)
    assert "return 2 * x" not in text and "half = 0.5" not in text
    assert "double(-1)" not in text and "HIDDEN TESTS" not in text and "SOLUTION" not in text
    assert student.cells[2].source.splitlines()[-1] == "    " + grading.CODE_STUB  # indented
    assert student.cells[7].source == grading.TEXT_STUB
    assert (
        student.cells[3].metadata["nbgrader"]["locked"]
        and "checksum" in student.cells[3].metadata["nbgrader"]
    )


def test_the_student_edition_keeps_the_solution_edition_unchanged():
    notebook = tiny_lesson()
    grading.student_edition(notebook)
    assert "return 2 * x" in notebook.cells[2].source


@pytest.mark.slow
def test_the_check_gives_the_solution_full_points(tmp_path):
    outcome = execute(tiny_lesson(), tmp_path)
    assert [(r.grade_id, r.status) for r in outcome] == [
        ("00-double-check", "passed"),
        ("00-half-check", "passed"),
        ("00-why", "answered"),
    ]
    assert results.all_passed(outcome)
    assert sum(result.earned for result in outcome) == 3


@pytest.mark.slow
def test_the_check_gives_the_student_edition_nothing(tmp_path):
    outcome = execute(grading.student_edition(tiny_lesson()), tmp_path)
    assert [r.status for r in outcome] == ["not attempted"] * 3
    assert sum(result.earned for result in outcome) == 0 and not results.all_passed(outcome)


@pytest.mark.slow
def test_a_wrong_answer_fails_its_check_alone_with_its_message(tmp_path):
    notebook = tiny_lesson()
    notebook.cells[2].source = notebook.cells[2].source.replace("2 * x", "x + 2")
    outcome = execute(notebook, tmp_path)
    assert [r.status for r in outcome[:2]] == ["failed", "passed"]
    assert outcome[0].message == "AssertionError: double(3) should be 6: multiply the input by two."


def test_the_report_names_each_exercise_and_the_points():
    outcome = [
        results.ExerciseResult("02-mlp-check", "check", 3, "passed"),
        results.ExerciseResult("02-cnn-check", "check", 2, "failed", "AssertionError: no"),
        results.ExerciseResult("02-why", "written", 2, "not attempted"),
    ]
    report = results.format_results("02_models.ipynb", outcome)
    assert "passed        02-mlp-check" in report and "AssertionError: no" in report
    assert "graded by your instructor" in report
    assert report.splitlines()[-1] == "  points: 3 of 5 (1 of 2 checks passed)"


@pytest.mark.slow
def test_check_command_exits_1_until_every_check_passes(tmp_path):
    nbformat.write(grading.student_edition(tiny_lesson()), tmp_path / "student.ipynb")
    nbformat.write(tiny_lesson(), tmp_path / "solution.ipynb")
    command = [sys.executable, "-m", "labutils", "check"]
    blank = subprocess.run([*command, tmp_path / "student.ipynb"], capture_output=True, text=True)
    solved = subprocess.run([*command, tmp_path / "solution.ipynb"], capture_output=True, text=True)
    assert blank.returncode == 1 and "points: 0 of 3" in blank.stdout
    assert solved.returncode == 0 and "points: 3 of 3" in solved.stdout


def test_check_command_names_a_missing_notebook(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "labutils", "check", tmp_path / "nope.ipynb"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "nope.ipynb does not exist" in result.stderr


@pytest.mark.parametrize("kind", ["answer", "check", "written"])
def test_metadata_is_what_nbgrader_validates(kind):
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    cell = {
        "answer": grading.answer_cell(ANSWER, "x"),
        "check": grading.check_cell(CHECK, "x", 1),
        "written": grading.written_cell(WRITTEN, "x", 1),
    }[kind]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    try:
        MetadataValidator().validate_nb(notebook)
    except ValidationError as error:  # pragma: no cover - the message is the point
        pytest.fail(f"nbgrader rejects the {kind} cell: {error}")


# --------------------------------------------------------------------------- nbgrader's own CLI


@pytest.mark.slow
def test_nbgrader_generates_the_same_student_edition_and_autogrades_it(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "lab").mkdir(parents=True)
    nbformat.write(tiny_lesson(), course / "source" / "lab" / "lesson.ipynb")
    nbgrader(course, "generate_assignment", "lab")
    released = nbformat.read(course / "release" / "lab" / "lesson.ipynb", as_version=4)
    ours = grading.student_edition(tiny_lesson())
    assert [cell.source for cell in released.cells] == [cell.source for cell in ours.cells]
    (course / "submitted" / "ada" / "lab").mkdir(parents=True)
    nbformat.write(tiny_lesson(), course / "submitted" / "ada" / "lab" / "lesson.ipynb")
    nbgrader(course, "autograde", "lab")
    assert autograded_score(course, "lab", "ada") == (3, 5)  # the written answer awaits a person


def wrong_residual_block(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Notebook 02 with the report's residual block as the student's answer."""
    cell = next(
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "02-residual"
    )
    lines = cell.source.splitlines()
    end = next(i for i, line in enumerate(lines) if "### END SOLUTION" in line)
    indent = lines[end][: len(lines[end]) - len(lines[end].lstrip())]
    begin = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    lines[begin + 1 : end] = [
        f"{indent}out = self.relu(self.bn1(self.conv1(x)))",
        f"{indent}return self.relu(self.bn2(self.conv2(out))) + x",
    ]
    cell.source = "\n".join(lines)
    return notebook


@pytest.mark.slow
def test_check_takes_the_points_of_a_wrong_answer_and_only_those(tmp_path):
    # The solution's full points: test_runner's check of the session's smoke series.
    wrong = tmp_path / "02_models.ipynb"
    solution = nbformat.read(runner.NOTEBOOK_FOLDER / "02_models.ipynb", as_version=4)
    nbformat.write(wrong_residual_block(solution), wrong)
    command = [sys.executable, "-m", "labutils", "check", wrong]
    mistaken = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert mistaken.returncode == 1
    failed = [
        line.split()[1]
        for line in mistaken.stdout.splitlines()
        if line.strip().startswith("failed")
    ]
    assert failed == ["02-residual-check"], mistaken.stdout
    points = re.search(r"points: (\d+) of (\d+)", mistaken.stdout)
    assert points and 0 < int(points[1]) < int(points[2])
    print(mistaken.stdout)


def test_several_checks_of_one_blank_answer_are_all_not_attempted():
    notebook = grading.student_edition(tiny_lesson())
    second_check = grading.check_cell('assert double(0) == 0, "zero doubled is zero"', "00-zero", 1)
    notebook.cells.insert(4, second_check)  # right after the first check of double
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="double")]
    statuses = [result.status for result in results.grade_executed(notebook)]
    assert statuses[:3] == ["not attempted"] * 3


# --------------------------------------------------------------- checks.json: the student's checks


def student_folder_of_the_tiny_lesson(tmp_path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    nbformat.write(tiny_lesson(), source / "lesson.ipynb")
    grading.write_student_edition(source, tmp_path / "student")
    return tmp_path / "student"


def test_checks_json_holds_the_visible_checks_and_no_solution_or_hidden_test(tmp_path):
    text = (student_folder_of_the_tiny_lesson(tmp_path) / "checks.json").read_text()
    assert "double(3) == 6" in text and "half == 0.5" in text
    assert "return 2 * x" not in text and "double(-1)" not in text and "two is one more" not in text


@pytest.mark.slow
def test_check_puts_back_a_check_the_student_emptied(tmp_path):
    student = student_folder_of_the_tiny_lesson(tmp_path)
    notebook = nbformat.read(student / "lesson.ipynb", as_version=4)
    answered(notebook, "00-double", "return x + 2")
    answered(notebook, "00-half", "half = 0.5")
    notebook.cells[check_index(notebook, "00-double-check")].source = "pass"
    nbformat.write(notebook, student / "lesson.ipynb")
    command = [sys.executable, "-m", "labutils", "check", student / "lesson.ipynb"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "00-double-check was changed in the submission: graded with the" in result.stdout
    assert "double(3) should be 6" in result.stdout and "points: 1 of 3" in result.stdout
