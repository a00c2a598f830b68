"""Running a submission: its own folder and environment, a memory limit, a time limit per cell,
and a new kernel when the old one will not stop or dies. One real kernel run, shared."""

import os

import nbformat
import pytest

from labutils.course import execution, sandbox
from labutils.course.results import KERNEL_DIED, TIMED_OUT

CELLS = [
    "x = 1",
    "import os\nprint(os.environ.get('LABUTILS_TEST_SECRET'), os.getcwd(), os.environ['HOME'])",
    "too_much = bytearray(16 * 2**30)",
    "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    "print(x)",
    "import os\nos._exit(1)",
    "print('still graded')",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The cells above, run under a 3 s limit per cell and a 3 GB address space."""
    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    scratch = sandbox.scratch_folder(tmp_path_factory.mktemp("scratch"), "ada", "lesson")
    nbformat.write(notebook, scratch / "lesson.ipynb")
    os.environ["LABUTILS_TEST_SECRET"] = "the instructor's token"
    try:
        environment = sandbox.clean_environment(scratch, "smoke", 1)
    finally:
        del os.environ["LABUTILS_TEST_SECRET"]
    limits = sandbox.Limits(timeout=3, memory_gb=3)
    run = execution.execute_notebook(scratch / "lesson.ipynb", scratch, {}, environment, limits)
    return run, scratch


def errors(cell) -> list[str]:
    return [o["ename"] for o in cell.outputs if o["output_type"] == "error"]


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")


@pytest.mark.slow
def test_the_kernel_runs_in_its_folder_without_the_instructors_variables(executed):
    run, scratch = executed
    assert text(run.cells[1]).split() == ["None", str(scratch), str(scratch)]


@pytest.mark.slow
def test_an_allocation_past_the_memory_limit_fails_in_its_cell(executed):
    assert errors(executed[0].cells[2]) == ["MemoryError"]


@pytest.mark.slow
def test_a_cell_that_will_not_stop_times_out_and_a_new_kernel_goes_on(executed):
    run = executed[0]
    assert TIMED_OUT in errors(run.cells[3])
    assert "timed out after 3 s" in run.cells[3].outputs[-1]["evalue"]
    assert errors(run.cells[4]) == ["NameError"]  # the new kernel has not seen x = 1


@pytest.mark.slow
def test_a_dead_kernel_is_reported_and_the_cells_below_still_run(executed):
    run = executed[0]
    assert errors(run.cells[5]) == [KERNEL_DIED]
    assert text(run.cells[6]) == "still graded\n"
