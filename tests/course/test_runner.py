"""The batch runner: the real series, executed by papermill in real kernels, on synthetic data."""

import json
import subprocess
import sys
from datetime import UTC, datetime

import nbformat
import pytest

from labutils import models, runs, sources
from labutils.course import budget, costs, results, runner
from labutils.engine import checkpoints

# Tests marked slow execute notebooks in real kernels: seconds to a minute each.


# smoke_run: the session's smoke run (tests/conftest.py), shared with the book's tests.


@pytest.mark.slow
def test_the_series_runs_and_reports_each_notebook(smoke_run):
    result, _ = smoke_run
    assert result.returncode == 0, result.stdout + result.stderr
    steps = runner.series()
    for number, step in enumerate(steps, 1):
        assert f"[{number}/{len(steps)}] {step.title} done in" in result.stdout
    assert "SYNTHETIC" in result.stdout
    assert "without encryption" not in result.stderr  # kernels on local sockets: no warning


@pytest.mark.slow
def test_every_code_cell_of_every_executed_notebook_ran(smoke_run):
    _, out = smoke_run
    executed = sorted((out / "notebooks").glob("*.ipynb"))
    assert [path.name for path in executed] == sorted(step.output for step in runner.series())
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code_cells, path
        for cell in code_cells:
            assert cell.execution_count is not None, f"{path.name}: a cell did not run"
            assert not [output for output in cell.outputs if output.output_type == "error"]
        assert not notebook.metadata.papermill.exception


@pytest.mark.slow
def test_the_solutions_of_every_executed_notebook_earn_every_point(smoke_run):
    _, out = smoke_run
    for path in sorted((out / "notebooks").glob("*.ipynb")):
        outcome = results.grade_executed(nbformat.read(path, as_version=4))
        checks = [result for result in outcome if result.kind == "check"]
        assert checks and results.all_passed(outcome), path.name
        assert sum(result.earned for result in checks) == sum(r.points for r in checks) > 0


@pytest.mark.slow
def test_each_model_leaves_a_complete_run_folder(smoke_run):
    _, out = smoke_run
    for model in models.MODEL_NAMES:
        folder = out / model
        history = json.loads((folder / "history.json").read_text())
        info = json.loads((folder / "run.json").read_text())
        assert history and info["model"] == model and info["data_kind"] == "synthetic"
        trained = checkpoints.load_trained_model(folder / "model.pt")
        assert trained.training is False  # ready to predict
        assert list((folder / "figures").glob("*.png"))
    assert (out / "figures" / "comparison_curves.png").is_file()
    assert (out / "figures" / "comparison_test_accuracy.png").is_file()


@pytest.mark.slow
def test_summary_tells_what_ran_where_and_how_well(smoke_run):
    _, out = smoke_run
    summary = (out / runner.SUMMARY_FILE).read_text()
    for words in (
        "profile `smoke`",
        "SYNTHETIC",
        "verified official: no",
        "device=",
        "precision=",
        "torch ",
        "papermill ",
        "| 04_comparison.ipynb | ok |",
    ):
        assert words in summary
    for model in models.MODEL_NAMES:
        assert f"| {model} |" in summary
    assert "figures/comparison_curves.png" in summary
    assert "figures/comparison_test_accuracy.png" in summary


def test_summary_gives_each_model_its_own_runtime_and_the_machine_no_memory_format(tmp_path):
    recorded = {
        "mlp": "device=cpu precision=fp32 memory_format=contiguous",
        "cnn": "device=cpu precision=bf16 autocast memory_format=channels_last",
    }
    for name, runtime_line in recorded.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / runs.HISTORY_FILE).write_text(
            json.dumps([{"epoch": 1, "seconds": 1.0, "images_per_second": 10.0, "test_acc": 0.5}])
        )
        runs.save_run_info(tmp_path / name, {"name": name, "runtime": runtime_line})
    source = sources.DataSource("synthetic", tmp_path / "data", verified=False)
    summary = runner.write_summary(
        tmp_path, [], "smoke", source, datetime.now(UTC), 1.0
    ).read_text()
    machine = next(line for line in summary.splitlines() if line.startswith("- machine:"))
    assert "device=" in machine and "precision=" in machine
    assert "memory_format" not in machine
    for name, runtime_line in recorded.items():
        row = next(line for line in summary.splitlines() if line.startswith(f"| {name} |"))
        assert row.endswith(f"| {runtime_line} |")


def write_history(folder, accuracies):
    folder.mkdir(parents=True)
    history = [
        {"epoch": epoch, "lr": 0.01, "seconds": 1.0, "images_per_second": 10.0, "test_acc": acc}
        for epoch, acc in enumerate(accuracies, 1)
    ]
    (folder / runs.HISTORY_FILE).write_text(json.dumps(history))


def test_a_collapse_in_any_model_is_named_in_one_line_at_the_end(tmp_path):
    write_history(tmp_path / "mlp", [0.40, 0.43, 0.30, 0.14])
    write_history(tmp_path / "cnn", [0.50, 0.60, 0.70])
    assert runner.collapse_line(tmp_path / "cnn") is None
    line = runner.collapse_line(tmp_path)
    assert line.startswith("warning: mlp: test accuracy fell from 43.0%") and "\n" not in line
    source = sources.DataSource("synthetic", tmp_path / "data", verified=False)
    summary = runner.write_summary(tmp_path, [], "smoke", source, datetime.now(UTC), 1.0)
    assert summary.read_text().count("test accuracy fell from") == 1


def test_the_summary_sets_each_plan_beside_the_actual_minutes(tmp_path):
    plan = budget.plan_series(
        {
            name: costs.ModelCost(name, 50, 1e-3, 200, 100, 1e-3, 1e-3)
            for name in models.MODEL_NAMES
        },
        5,
        profile="smoke",
        synthetic=True,
    )
    step = runner.Step("04_comparison.ipynb", "04_comparison.ipynb", seconds=30.0, status="ok")
    step.planned_seconds = 24.0
    source = sources.DataSource("synthetic", tmp_path / "data", verified=False)
    summary = runner.write_summary(tmp_path, [step], "smoke", source, datetime.now(UTC), 290, plan)
    text = summary.read_text()
    assert "| notebook | planned (min) | planned again (min) | actual (min) |" in text
    first = plan.notebook_seconds["04_comparison.ipynb"] / 60
    assert f"| 04_comparison.ipynb | {first:.1f} | 0.4 | 0.5 |" in text
    assert "3% under the budget" in text


@pytest.mark.slow
def test_a_failing_notebook_is_named_with_its_cell_and_the_rest_is_kept(tmp_path, capsys):
    # The real first notebook, then the training notebook given a bad value: it must stop in
    # its validation cell, and the first notebook's results must stay.
    steps = [
        runner.Step("01_data_exploration.ipynb", "01.ipynb"),
        runner.Step("03_training.ipynb", "03_bad.ipynb", {"MODEL": "vgg"}),
        runner.Step("04_comparison.ipynb", "04.ipynb"),
    ]
    out = tmp_path / "run"
    with pytest.raises(runner.NotebookFailed) as failure:
        runner.run_series("smoke", root=tmp_path / "data", out=out, steps=steps)
    message = str(failure.value)
    assert "03_training.ipynb (MODEL=vgg) failed in cell [" in message
    assert "MODEL" in message and "vgg" in message and str(out / "notebooks") in message
    assert (out / "notebooks" / "01.ipynb").is_file()
    assert (out / "notebooks" / "03_bad.ipynb").is_file()  # with the error in place
    assert not (out / "notebooks" / "04.ipynb").exists()
    summary = (out / runner.SUMMARY_FILE).read_text()
    assert "| 01_data_exploration.ipynb | ok |" in summary
    assert "| 03_training.ipynb (MODEL=vgg) | FAILED |" in summary
    assert "| 04_comparison.ipynb | not run |" in summary


@pytest.mark.slow
def test_the_command_exits_non_zero_on_a_failure(tmp_path):
    (tmp_path / "notebooks").mkdir()
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    broken.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.write(broken, tmp_path / "notebooks" / "broken.ipynb")
    code = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from labutils.course import runner; "
            "import pathlib; runner.NOTEBOOK_FOLDER = pathlib.Path(sys.argv[1]); "
            "runner.series = lambda: [runner.Step('broken.ipynb', 'broken.ipynb')]; "
            "from labutils.course import cli; sys.exit(cli.main(sys.argv[2:]))",
            tmp_path / "notebooks",
            "run",
            "--profile",
            "smoke",
            "--root",
            tmp_path / "data",
            "--out",
            tmp_path / "run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert code.returncode == 1  # cell [1] is the parameters cell papermill injects
    assert "broken.ipynb failed in cell [2] (`1 / 0`): ZeroDivisionError" in code.stderr
