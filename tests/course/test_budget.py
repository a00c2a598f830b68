"""Time budgets: the plan from measured costs, its file, and the series trained by it."""

import json

import numpy as np
import pytest

from labutils import loaders
from labutils.course import budget, cli, profiles, runner

# Per-image seconds of the same order as a 2-core CPU with bf16 (train, test); 40 000 / 10 000.
SPEEDS = {"mlp": (1e-4, 3e-5), "cnn": (2.2e-3, 9e-4), "resnet9": (1.06e-2, 2.8e-3)}


@pytest.fixture
def costs():
    return {
        name: budget.ModelCost(
            name,
            profiles.training_settings("cpu", name)["batch_size"],
            profiles.training_settings("cpu", name)["max_lr"],
            40_000,
            10_000,
            train,
            test,
        )
        for name, (train, test) in SPEEDS.items()
    }


def training_seconds(plan, costs):
    return sum(
        plan.models[name].epochs * costs[name].epoch_seconds(plan.models[name].fraction)
        for name in costs
    )


@pytest.mark.parametrize("minutes", [10, 30, 60, 120])
def test_a_plan_fills_the_budget_without_passing_it(costs, minutes):
    plan = budget.plan_series(costs, minutes, planning_seconds=40)
    assert 0.9 * 60 * minutes <= plan.total_seconds <= 60 * minutes
    assert sum(plan.notebook_seconds.values()) + 40 == pytest.approx(plan.total_seconds)


def test_a_budget_that_buys_the_profile_gives_the_profile_epochs(costs):
    exact = budget.plan_series(costs, 1000)  # far too much: every model at its cap
    profile_epochs = {name: profiles.training_settings("cpu", name)["epochs"] for name in costs}
    overhead = exact.total_seconds - training_seconds(exact, costs)
    full = sum(profile_epochs[name] * costs[name].epoch_seconds() for name in costs)
    plan = budget.plan_series(costs, (overhead + full + 1) / 60)
    assert {name: plan.models[name].epochs for name in costs} == profile_epochs


def test_a_small_budget_trains_part_of_the_split_and_warns(costs):
    plan = budget.plan_series(costs, 10)
    for name in ("cnn", "resnet9"):
        assert plan.models[name].epochs == 1 and 0.05 <= plan.models[name].fraction < 1
        assert plan.models[name].settings()["train_fraction"] == plan.models[name].fraction
        assert f"{name} gets only 1 epoch on" in plan.models[name].warning
    # Three epochs of the MLP cost seconds: it gets them rather than a sliver of one.
    assert plan.models["mlp"].epochs >= 3 and plan.models["mlp"].warning is None
    described = plan.describe()
    assert "budget of 10 min" in described and described.count("warning:") == 2


def test_no_model_trains_more_than_the_reports_epochs(costs):
    plan = budget.plan_series(costs, 10_000)
    assert max(model.epochs for model in plan.models.values()) == budget.MAX_EPOCHS


def test_a_budget_too_small_says_what_it_would_need(costs):
    with pytest.raises(budget.BudgetError, match="give the series more minutes"):
        budget.plan_series(costs, 5.5)
    with pytest.raises(budget.BudgetError, match="besides training"):
        budget.plan_series(costs, 1)


def test_the_plan_quotes_the_nearest_measured_accuracy():
    assert budget.expected_accuracy("resnet9", 9, 1.0) == "87.5%"
    assert budget.expected_accuracy("resnet9", 6, 1.0).startswith("~")
    assert "measured: 5 epochs" in budget.expected_accuracy("resnet9", 6, 1.0)


def test_the_plan_survives_its_file(costs, tmp_path):
    plan = budget.plan_series(costs, 30, machine="a test machine")
    budget.save_plan(plan, tmp_path)
    assert budget.load_plan(tmp_path) == plan
    assert budget.load_plan(tmp_path / "elsewhere") is None


def test_the_profile_budget_applies_to_real_data_only():
    assert budget.resolve_budget("cpu", None, synthetic=False) == 60
    assert budget.resolve_budget("cpu", None, synthetic=True) is None
    assert budget.resolve_budget("cpu", 0, synthetic=False) is None  # fixed epochs
    assert budget.resolve_budget("smoke", 2, synthetic=True) == 2  # asked for: planned
    assert budget.resolve_budget("gpu", None, synthetic=False) is None


def test_a_fraction_of_the_split_is_drawn_once_from_the_seed():
    images = np.arange(100 * 2).reshape(100, 2)
    labels = np.arange(100)
    part_images, part_labels = loaders.training_part(images, labels, 0.3, seed=1)
    assert len(part_labels) == 30 and (part_images[:, 0] == 2 * part_labels).all()
    assert (loaders.training_part(images, labels, 0.3, seed=1)[1] == part_labels).all()
    assert not (loaders.training_part(images, labels, 0.3, seed=2)[1] == part_labels).all()
    assert loaders.training_part(images, labels, 1.0)[1] is labels
    with pytest.raises(ValueError, match="train_fraction"):
        loaders.training_part(images, labels, 0)


def test_a_plan_is_made_on_this_machine_and_reused_from_the_run_folder(tmp_path):
    source = profiles.open_data("smoke", root=tmp_path / "data")
    plan = budget.plan_for_notebook(tmp_path / "run", "smoke", source, 5)
    assert plan.planning_seconds > 0 and "device=cpu" in plan.machine
    assert set(plan.models) == {"mlp", "cnn", "resnet9"}
    # Notebook 03 for the next model reads the saved plan; it does not time the models again.
    saved = json.loads((tmp_path / "run" / budget.PLAN_FILE).read_text())
    saved["models"]["cnn"]["epochs"] = 7
    (tmp_path / "run" / budget.PLAN_FILE).write_text(json.dumps(saved))
    assert budget.plan_for_notebook(tmp_path / "run", "smoke", source, 5).models["cnn"].epochs == 7
    # Another budget is another plan.
    assert budget.plan_for_notebook(tmp_path / "run", "smoke", source, 6).budget_minutes == 6
    assert budget.plan_for_notebook(tmp_path / "run", "smoke", source, 0) is None


def test_train_on_a_fraction_of_the_split(capsys, tmp_path):
    arguments = ["train", "--model", "mlp", "--profile", "smoke", "--root", tmp_path / "data"]
    out = tmp_path / "mlp"
    code = cli.main([str(a) for a in [*arguments, "--train-fraction", 0.5, "--out", out]])
    assert code == 0
    info = json.loads((out / "run.json").read_text())
    assert info["settings"]["train_fraction"] == 0.5


def test_run_takes_a_budget_or_epochs_not_both(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--budget", "5", "--epochs", "3"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_the_series_trains_each_model_as_its_plan_says(tmp_path):
    """The runner plans, notebook 03 trains by the plan, the summary sets planned beside actual."""
    out = tmp_path / "run"
    step = runner.Step(
        "03_training.ipynb",
        "03_training_mlp.ipynb",
        {"MODEL": "mlp", "SHOW_DIVERGENCE": False, "SHOW_AUGMENTATION": False},
    )
    runner.run_series(
        "smoke", root=tmp_path / "data", out=out, steps=[step], budget_minutes=5, progress=False
    )
    plan = budget.load_plan(out)
    info = json.loads((out / "mlp" / "run.json").read_text())
    history = json.loads((out / "mlp" / "history.json").read_text())
    assert info["settings"]["epochs"] == plan.models["mlp"].epochs == len(history)
    assert info["settings"]["train_fraction"] == plan.models["mlp"].fraction
    summary = (out / runner.SUMMARY_FILE).read_text()
    assert "## Time budget: 5 min" in summary and "| 03_training.ipynb (MODEL=mlp" in summary
    assert "planned (min) | actual (min)" in summary
    assert plan.machine in summary


def test_the_quoted_accuracy_names_a_different_batch_size():
    assert budget.expected_accuracy("cnn", 10, 1.0, 128) == "77.5%"
    assert budget.expected_accuracy("cnn", 10, 1.0, 64) == "78.4%"
    other_batch = budget.expected_accuracy("cnn", 10, 1.0, 256)
    assert other_batch.endswith("(measured: 10 epochs, batch 128)")
