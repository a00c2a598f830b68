"""A tiny lesson in the lab's format, student copies of it, and nbgrader's own commands, for the
grading tests."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from labutils.course import execution, grading

ANSWER = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
'''
CHECK = """assert double(3) == 6, "double(3) should be 6: multiply the input by two."
### BEGIN HIDDEN TESTS
assert double(-1) == -2
### END HIDDEN TESTS
exercises.passed("double")
"""
WRITTEN = "### BEGIN SOLUTION\nBecause two is one more than one.\n### END SOLUTION"


def tiny_lesson() -> nbformat.NotebookNode:
    """A two-exercise notebook in the lab's format: parameters, answers, checks, a question."""
    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
    )
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from labutils.exercises import Exercises\nexercises = Exercises()"
        ),
        nbformat.v4.new_code_cell(
            'PROFILE = "auto"  # how big\nRUN_DIR = "../runs/latest"  # where',
            metadata={"tags": ["parameters"]},
        ),
        grading.answer_cell(ANSWER, "00-double"),
        grading.check_cell(CHECK, "00-double-check", points=2),
        grading.answer_cell("### BEGIN SOLUTION\nhalf = 0.5\n### END SOLUTION", "00-half"),
        grading.check_cell(
            'assert half == 0.5, "half is a number: one divided by two."\nexercises.passed("half")',
            "00-half-check",
            points=1,
        ),
        nbformat.v4.new_markdown_cell("Why is two times one two?"),
        grading.written_cell(WRITTEN, "00-why", points=2),
        nbformat.v4.new_code_cell('print("the end")'),
    ]
    return notebook


def answered(notebook: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    """The student's notebook with nbgrader's stub in answer ``grade_id`` replaced by ``code``."""
    cell = notebook.cells[check_index(notebook, grade_id)]
    lines = cell.source.splitlines()
    stub = next(i for i, line in enumerate(lines) if grading.CODE_STUB in line)
    indent = lines[stub][: len(lines[stub]) - len(lines[stub].lstrip())]
    # The stub and the "# YOUR CODE HERE" line above it give way to the answer.
    lines[stub - 1 : stub + 1] = [indent + line for line in code.splitlines()]
    cell.source = "\n".join(lines)
    return notebook


def check_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    """The position of the cell ``grade_id``."""
    return next(
        i
        for i, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def nbgrader(course, *arguments):
    """Run an nbgrader command on a course folder with its gradebook inside it."""
    bin_folder = str(Path(sys.executable).parent)  # nbgrader runs alembic from the environment
    environment = {**os.environ, "PATH": bin_folder + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            *arguments,
            f"--CourseDirectory.root={course}",
            f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}",
        ],
        cwd=course,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def autograded_score(course, assignment: str, student: str) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return submission.score, submission.max_score


def execute_for_check(path: Path, run_dir: Path) -> nbformat.NotebookNode:
    """Run a notebook where it lies as ``labutils check`` runs it (its checks as they stand),
    with ``run_dir`` as its runs; return it executed."""
    notebook = nbformat.read(path, as_version=4)
    parameters, environment, limits = execution.self_check_conditions(notebook, run_dir)
    folder = Path(path).resolve().parent
    return execution.execute_notebook(path, folder, parameters, environment, limits)
