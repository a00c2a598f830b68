"""Grading a class: a small class built here, graded once per session with the real command.

The class, each student a copy of a tiny two-check lesson (00-double-check 2 pt with a hidden
test, 00-half-check 1 pt, a written answer 2 pt):

    ada      the solution edition                         3 of 3
    blank    the blank student edition                    0, not attempted
    wrong    double wrong, half right                     1
    emptied  double wrong and its check emptied (`pass`)  1: graded with the original
    deleted  double wrong and its check deleted           1: put back, graded
    looper   double never returns, half right             1: timed out, half still graded
    hidden   double passes what students see, not the hidden test   1
    other    another lesson saved under this lesson's name          0, reported
    garbage  a file that is not a notebook                          0, reported
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from lessons import answered, check_index, tiny_lesson

from labutils.course import gradescope, grading, runner, sandbox
from labutils.course.results import HIDDEN_FAILED

LESSON = "00_lesson.ipynb"
TIMEOUT = 3  # seconds per cell: the looping answer must not hold the class up
REPOSITORY = runner.NOTEBOOK_FOLDER.parent


def student_copy(double: str | None = None, half: str | None = "half = 1 / 2"):
    """The student edition with the given answers written in."""
    notebook = grading.student_edition(tiny_lesson())
    if double is not None:
        answered(notebook, "00-double", double)
    if half is not None:
        answered(notebook, "00-half", half)
    return notebook


def other_lesson():
    """A lesson of another assignment: its exercises have other ids."""
    notebook = tiny_lesson()
    for cell in notebook.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.grade_id = cell.metadata.nbgrader.grade_id.replace("00", "07")
    return notebook


def the_class() -> dict:
    """Each student's notebook (or text, for a file that is not a notebook)."""
    emptied = student_copy("return x + 2")
    emptied.cells[check_index(emptied, "00-double-check")].source = "pass"
    deleted = student_copy("return x + 2")
    del deleted.cells[check_index(deleted, "00-double-check")]
    return {
        "ada": tiny_lesson(),
        "blank": grading.student_edition(tiny_lesson()),
        "wrong": student_copy("return x + 2"),
        "emptied": emptied,
        "deleted": deleted,
        "looper": student_copy("while True:\n    pass"),
        "hidden": student_copy("return abs(2 * x)"),
        "other": other_lesson(),
        "garbage": "this is my homework, I could not save the notebook\n",
    }


def write_class(folder):
    """source/ (the solution edition) and submissions/<student>/<lesson>."""
    (folder / "source").mkdir()
    nbformat.write(tiny_lesson(), folder / "source" / LESSON)
    for student, notebook in the_class().items():
        path = folder / "submissions" / student / LESSON
        path.parent.mkdir(parents=True)
        if isinstance(notebook, str):
            path.write_text(notebook)
        else:
            nbformat.write(notebook, path)
    return folder / "source", folder / "submissions"


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """``python -m labutils grade`` on the class, once per session, two notebooks at a time."""
    folder = tmp_path_factory.mktemp("class")
    source, submissions = write_class(folder)
    out = folder / "out"
    command = [sys.executable, "-m", "labutils", "grade", submissions, "--out", out]
    command += ["--source", source, "--timeout", str(TIMEOUT), "--jobs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    return out, result.stdout, source


def grades_of(out) -> dict:
    """grades.csv as {(student, exercise): row}."""
    with (out / "grades.csv").open(newline="") as file:
        return {(row["student"], row["exercise"]): row for row in csv.DictReader(file)}


@pytest.mark.slow
def test_grades_csv_has_exact_points_per_student_and_exercise(graded_class):
    out, _, _ = graded_class
    grades = grades_of(out)
    expected = {
        "ada": ("2", "1"),
        "blank": ("0", "0"),
        "wrong": ("0", "1"),
        "emptied": ("0", "1"),
        "deleted": ("0", "1"),
        "looper": ("0", "1"),
        "hidden": ("0", "1"),
        "other": ("0", "0"),
        "garbage": ("0", "0"),
    }
    for student, (double, half) in expected.items():
        assert grades[student, "00-double-check"]["points"] == double, student
        assert grades[student, "00-half-check"]["points"] == half, student
        assert grades[student, "00-why"]["status"] == "manual"
        assert grades[student, "00-double-check"]["max_points"] == "2"


@pytest.mark.slow
def test_statuses_name_what_happened(graded_class):
    grades = grades_of(graded_class[0])
    status = {student: grades[student, "00-double-check"]["status"] for student, _ in grades}
    assert status == {
        "ada": "passed",
        "blank": "not attempted",
        "wrong": "failed",
        "emptied": "changed check",
        "deleted": "changed check",
        "looper": "timed out",
        "hidden": "failed",
        "other": "error",
        "garbage": "error",
    }
    assert grades["looper", "00-half-check"]["status"] == "passed"  # graded after the timeout
    assert f"timed out after {TIMEOUT} s" in grades["looper", "00-double-check"]["message"]


@pytest.mark.slow
def test_a_tampered_check_is_graded_with_the_original_and_reported(graded_class):
    out, stdout, _ = graded_class
    for student in ("emptied", "deleted"):
        feedback = (out / "feedback" / student / "00_lesson.md").read_text()
        assert "double(3) should be 6" in feedback, feedback
        assert "00-double-check was" in feedback and "graded" in feedback
    assert "emptied/00_lesson.ipynb: 00-double-check was changed in the submission" in stdout
    assert "deleted/00_lesson.ipynb: 00-double-check was deleted" in stdout


@pytest.mark.slow
def test_files_that_cannot_be_graded_are_named(graded_class):
    grades = grades_of(graded_class[0])
    assert "not a notebook: not JSON" in grades["garbage", "00-double-check"]["message"]
    assert "this is not 00_lesson.ipynb" in grades["other", "00-double-check"]["message"]
    assert "07-double-check" in grades["other", "00-double-check"]["message"]


@pytest.mark.slow
def test_no_hidden_test_reaches_feedback_csv_or_the_summary(graded_class):
    out, stdout, _ = graded_class
    texts = [path.read_text() for path in (out / "feedback").rglob("*.md")]
    texts += [(out / "grades.csv").read_text(), stdout]
    for text in texts:
        assert "double(-1)" not in text and "HIDDEN" not in text
    assert HIDDEN_FAILED in (out / "feedback" / "hidden" / "00_lesson.md").read_text()
    graded = nbformat.read(out / "graded" / "hidden" / LESSON, as_version=4)
    assert any("double(-1)" in cell.source for cell in graded.cells)  # for the instructor


@pytest.mark.slow
def test_the_summary_fits_a_screen_and_lists_written_answers(graded_class):
    _, stdout, _ = graded_class
    assert len(stdout.splitlines()) < 60
    assert "Written answers to grade by hand" in stdout
    written = stdout.split("Written answers to grade by hand")[1]
    assert "ada" in written.splitlines()[1] and "00-why" in written.splitlines()[1]
    assert "no written answer yet: blank, deleted" in written


@pytest.mark.slow
def test_graded_notebooks_are_kept_for_the_instructor(graded_class):
    out = graded_class[0]
    assert (out / "graded" / "ada" / LESSON).is_file()
    assert not (out / "graded" / "garbage").exists()
    assert not (out / ".scratch").exists()


@pytest.mark.slow
def test_a_student_feedback_file_reads_as_a_report(graded_class):
    feedback = (graded_class[0] / "feedback" / "wrong" / "00_lesson.md").read_text()
    assert feedback.startswith("# 00_lesson.ipynb: feedback for wrong")
    assert "Automatic checks: **1 of 3 points**." in feedback
    assert "| 00-double-check | failed | 0 / 2 |" in feedback


# ------------------------------------------------------------------------------ Gradescope


def fake_autograder_root(tmp_path, source, notebook):
    """Gradescope's folders: the unpacked bundle in source/, the submission, results/."""
    root = tmp_path / "autograder"
    bundle = gradescope.build_bundle(source, REPOSITORY, tmp_path / "autograder.zip", TIMEOUT)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    nbformat.write(notebook, root / "submission" / LESSON)
    return root


@pytest.mark.slow
def test_the_bundles_run_autograder_writes_gradescope_results(graded_class, tmp_path):
    source = graded_class[2]
    root = fake_autograder_root(tmp_path, source, the_class()["emptied"])
    names = {p.name for p in (root / "source").iterdir()}
    assert {"setup.sh", "run_autograder", "lab", "notebooks"} <= names
    assert (root / "source" / "lab" / "pyproject.toml").is_file()
    environment = {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", root / "run_autograder"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **environment},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 1
    tests = {test["name"]: test for test in results["tests"]}
    assert set(tests) == {"00-double-check", "00-half-check"}
    double = tests["00-double-check"]
    assert (double["score"], double["max_score"], double["visibility"]) == (0, 2, "visible")
    assert "changed" in double["output"] and "double(3) should be 6" in double["output"]
    assert "double(-1)" not in json.dumps(results)


# ------------------------------------------------------------------------------ bubblewrap


def bwrap_runs() -> str | None:
    """Why bubblewrap cannot be tried here, or None."""
    if sandbox.sandbox_problem("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    trial = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"])
    return None if trial.returncode == 0 else "bwrap cannot make namespaces on this machine"


@pytest.mark.slow
@pytest.mark.skipif(bwrap_runs() is not None, reason=str(bwrap_runs()))
def test_grading_inside_bubblewrap_gives_the_same_points(graded_class, tmp_path):
    source = graded_class[2]
    submissions = tmp_path / "submissions"
    for student in ("ada", "wrong"):
        (submissions / student).mkdir(parents=True)
        nbformat.write(the_class()[student], submissions / student / LESSON)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "labutils", "grade", submissions, "--out", out]
    command += ["--source", source, "--timeout", "30", "--sandbox", "bwrap", "--jobs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    grades = grades_of(out)
    assert grades["ada", "00-double-check"]["points"] == "2"
    assert grades["wrong", "00-double-check"]["status"] == "failed"


def test_nbgraders_submitted_layout_is_found_by_file_name(tmp_path):
    from labutils.course import class_grading

    for student in ("ada", "bob"):
        folder = tmp_path / "submitted" / student / "lab1"
        folder.mkdir(parents=True)
        (folder / LESSON).write_text("{}")
    (tmp_path / "submitted" / "bob" / "lab1" / "notes.ipynb").write_text("{}")
    found = class_grading.find_submissions(tmp_path, [LESSON, "01_other.ipynb"])
    assert found.names == [LESSON]
    assert found.notebooks["ada"][LESSON] == tmp_path / "submitted" / "ada" / "lab1" / LESSON
    assert found.strays == ["bob: lab1/notes.ipynb"]
