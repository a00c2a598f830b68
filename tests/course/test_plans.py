"""A plan's file, its words, and the measured runs it quotes."""

import tomllib
from pathlib import Path

from labutils.course import budget, costs, plans

REPOSITORY = Path(__file__).resolve().parents[2]

SPEEDS = {"mlp": (1e-4, 3e-5), "cnn": (2.2e-3, 9e-4), "resnet9": (1.06e-2, 2.8e-3)}


def timed_costs():
    return {
        name: costs.ModelCost(name, 256, 1e-3, 40_000, 10_000, train, test)
        for name, (train, test) in SPEEDS.items()
    }


def test_the_measured_runs_are_a_data_file_of_the_package():
    runs = plans.measured_runs()
    assert plans.MEASURED_RUNS_FILE.parent.name == "course"
    assert {row["model"] for row in runs} == {"mlp", "cnn", "resnet9"}
    for row in runs:
        assert {"epochs", "fraction", "batch_size", "test_accuracy", "cpu"} <= set(row)
    setuptools = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "**/*.json" in setuptools["package-data"]["labutils"]  # the wheel carries it


def test_the_plan_quotes_the_nearest_measured_accuracy():
    assert plans.expected_accuracy("resnet9", 9, 1.0) == "87.5%"
    assert plans.expected_accuracy("resnet9", 6, 1.0).startswith("~")
    assert "measured: 5 epochs" in plans.expected_accuracy("resnet9", 6, 1.0)


def test_the_plan_survives_its_file(tmp_path):
    timed = timed_costs()
    plan = budget.plan_series(timed, 30, machine="a test machine")
    plans.save_plan(plan, tmp_path)
    assert plans.load_plan(tmp_path) == plan
    assert plans.load_plan(tmp_path).costs["cnn"].epoch_seconds() == timed["cnn"].epoch_seconds()
    assert plans.load_plan(tmp_path / "elsewhere") is None


def test_the_quoted_accuracy_names_a_different_batch_size():
    assert plans.expected_accuracy("cnn", 10, 1.0, 128) == "77.5%"
    assert plans.expected_accuracy("cnn", 10, 1.0, 64) == "78.4%"
    other_batch = plans.expected_accuracy("cnn", 10, 1.0, 256)
    assert other_batch.endswith("(measured: 10 epochs, batch 128)")
