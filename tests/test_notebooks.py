"""The stored notebooks: clean in git and linted, parameterised for papermill.

nbval runs over them as instructors and CI services run it, from the Makefile:
``pytest --nbval-lax notebooks/`` (see ``make test``).
"""

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils.course import runner

REPOSITORY = runner.NOTEBOOK_FOLDER.parent
NOTEBOOKS = sorted(runner.NOTEBOOK_FOLDER.glob("*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_the_series_is_complete():
    names = {path.name for path in NOTEBOOKS}
    assert {step.notebook for step in runner.series()} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_clean(path):
    """Outputs and counts only on the cells nbval compares (a cell with no count is unrun)."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata == METADATA  # no machine details, but a language for papermill
    for cell in notebook.cells:
        assert "execution" not in cell.metadata and "papermill" not in cell.metadata
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(CHECKED):
            assert cell.outputs, "a checked cell needs its expected output"
            assert cell.execution_count is not None, "nbval ignores a checked cell with no count"
            assert "keep_output" in cell.metadata.get("tags", []), "nbstripout would drop it"
        else:
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_stored_notebooks_are_what_the_pre_commit_nbstripout_leaves():
    config = (REPOSITORY / ".pre-commit-config.yaml").read_text()
    arguments = ["--keep-count", "--keep-id"]
    assert f"args: [{', '.join(arguments)}]" in config
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *arguments, *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing_to_lint_or_format_notebooks_included():
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, str(REPOSITORY)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_are_plain_literals_checked_in_the_next_cell(path):
    cells = code_cells(path)
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    parameters = ast.parse(cells[tagged[0]].source)
    for statement in parameters.body:
        assert isinstance(statement, ast.Assign)
        ast.literal_eval(statement.value)  # raises if it is not a plain literal
    names = {statement.targets[0].id for statement in parameters.body}
    assert {"PROFILE", "DATA", "ROOT", "VERIFY", "SEED", "RUN_DIR"} <= names
    checks = cells[tagged[0] + 1].source
    assert "profiles.choose_profile(PROFILE)" in checks  # the smoke switch
    assert 'os.environ.get("LABUTILS_RUN_DIR", RUN_DIR)' in checks  # make test's own run folder
    assert "check_" in checks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_data_loader_workers(path):
    for cell in code_cells(path):
        assert "num_workers=" not in cell.source.replace(
            " ", ""
        ) or "num_workers=0" in cell.source.replace(" ", "")
