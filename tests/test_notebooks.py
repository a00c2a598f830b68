"""The stored notebooks: clean in git, parameterised for papermill, and passing nbval."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils import runner

NOTEBOOKS = sorted(runner.NOTEBOOK_FOLDER.glob("*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_the_series_is_complete():
    names = {path.name for path in NOTEBOOKS}
    assert {step.notebook for step in runner.series()} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata == METADATA  # no machine details, but a language for papermill
    for cell in notebook.cells:
        assert "execution" not in cell.metadata and "papermill" not in cell.metadata
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is None, cell.source[:60]  # no run's counter, even if checked
        if cell.source.startswith(CHECKED):
            assert cell.outputs, "a checked cell needs its expected output"
        else:
            assert cell.outputs == [], cell.source[:60]


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
    assert 'os.environ.get("LABUTILS_PROFILE", PROFILE)' in checks  # the smoke switch
    assert "check_" in checks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_data_loader_workers(path):
    for cell in code_cells(path):
        assert "num_workers=" not in cell.source.replace(" ", "") or \
            "num_workers=0" in cell.source.replace(" ", "")


def number_checked_cells(folder: Path) -> None:
    """Give each checked cell an execution count, in place.

    The stored notebooks keep the checked cells' expected outputs but no execution counts (they
    stay clean in git); nbval reads a cell without a count as never run and refuses its outputs.
    """
    for path in folder.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        for count, cell in enumerate(cells, start=1):
            if cell.source.startswith(CHECKED):
                cell.execution_count = count
        nbformat.write(notebook, path)


def test_nbval_passes_on_the_stored_notebooks(tmp_path):
    """``pytest --nbval-lax`` over a copy, so the run folder it writes stays in tmp_path."""
    shutil.copytree(runner.NOTEBOOK_FOLDER, tmp_path / "notebooks")
    number_checked_cells(tmp_path / "notebooks")
    environment = {**os.environ, "LABUTILS_PROFILE": "smoke", "LABUTILS_PROGRESS": "0",
                   "CIFAR10_ROOT": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--rootdir", tmp_path, "notebooks"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    assert (tmp_path / "runs" / "latest").is_dir()  # RUN_DIR="../runs/latest" from the copy
