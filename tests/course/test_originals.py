"""Putting the original checks back into a submission, without running anything."""

import nbformat
import pytest
from lessons import answered, check_index, tiny_lesson

from labutils.course import grading, originals


@pytest.fixture(scope="module")
def reference():
    solution = tiny_lesson()
    return originals.reference_from_solution(
        solution, "lesson.ipynb", grading.student_edition(solution)
    )


def submission() -> nbformat.NotebookNode:
    notebook = grading.student_edition(tiny_lesson())
    answered(notebook, "00-double", "return 2 * x")
    return answered(notebook, "00-half", "half = 0.5")


def test_an_untouched_student_copy_needs_nothing_put_right(reference):
    restored = originals.restore(submission(), reference)
    assert restored.notes == [] and restored.changed == set()


def test_the_solution_edition_itself_is_not_reported_as_changed(reference):
    assert originals.restore(tiny_lesson(), reference).notes == []


def test_an_edited_check_is_replaced_by_the_original_with_its_hidden_tests(reference):
    notebook = submission()
    notebook.cells[check_index(notebook, "00-double-check")].source = "pass"
    restored = originals.restore(notebook, reference)
    check = restored.notebook.cells[check_index(restored.notebook, "00-double-check")]
    assert "double(-1) == -2" in check.source and check.metadata.labutils["changed"]
    assert restored.changed == {"00-double-check"}


def test_raised_points_are_a_change_too(reference):
    notebook = submission()
    notebook.cells[check_index(notebook, "00-half-check")].metadata.nbgrader.points = 100
    restored = originals.restore(notebook, reference)
    check = restored.notebook.cells[check_index(restored.notebook, "00-half-check")]
    assert restored.changed == {"00-half-check"} and check.metadata.nbgrader.points == 1


def test_a_deleted_check_is_put_back_after_its_answer(reference):
    notebook = submission()
    del notebook.cells[check_index(notebook, "00-double-check")]
    restored = originals.restore(notebook, reference)
    cells = restored.notebook.cells
    assert (
        check_index(restored.notebook, "00-double-check")
        == check_index(restored.notebook, "00-double") + 1
    )
    assert len(cells) == len(tiny_lesson().cells)
    assert "00-double-check was deleted" in restored.notes[0]


def test_missing_duplicated_and_moved_answers_are_reported(reference):
    notebook = submission()
    half = notebook.cells.pop(check_index(notebook, "00-half"))
    notebook.cells.insert(0, half)  # moved above the first exercise
    notebook.cells.insert(0, nbformat.from_dict(half))  # and duplicated
    del notebook.cells[check_index(notebook, "00-why")]
    notes = "\n".join(originals.restore(notebook, reference).notes)
    assert "00-half appears twice" in notes
    assert "00-why (an answer cell) is missing" in notes
    assert "was moved" in notes


def test_a_notebook_of_another_assignment_is_refused(reference):
    other = nbformat.v4.new_notebook(cells=[grading.check_cell("assert True", "07-x", 1)])
    with pytest.raises(originals.WrongAssignment, match="this is not lesson.ipynb"):
        originals.restore(other, reference)
