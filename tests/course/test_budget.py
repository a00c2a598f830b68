"""Time budgets: the plan from measured costs, its file, and the series trained by it."""

import json

import numpy as np
import pytest

from labutils import loaders
from labutils.course import budget, cli, costs, plans, profiles, runner

# Per-image seconds of the same order as a 2-core CPU with bf16 (train, test); 40 000 / 10 000.
SPEEDS = {"mlp": (1e-4, 3e-5), "cnn": (2.2e-3, 9e-4), "resnet9": (1.06e-2, 2.8e-3)}


@pytest.fixture(name="costs")
def timed_costs():
    return {
        name: costs.ModelCost(
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


def passes(plan, name):
    return plan.models[name].epochs * plan.models[name].fraction


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


def test_a_budget_too_small_names_the_smallest_that_fits(costs):
    with pytest.raises(budget.BudgetError, match="smallest budget that fits here is") as refusal:
        budget.plan_series(costs, 2, planning_seconds=40)
    smallest = float(str(refusal.value).rpartition("--budget ")[2])
    assert smallest > 2
    plan = budget.plan_series(costs, smallest, planning_seconds=40)  # it does fit
    assert plan.total_seconds <= 60 * smallest
    with pytest.raises(budget.BudgetError):
        budget.plan_series(costs, smallest - 0.2, planning_seconds=40)  # and nothing much less


def test_a_share_past_whole_epochs_trains_a_fraction_more():
    assert budget.epochs_and_fraction(3.4) == (4, 0.85)
    assert budget.epochs_and_fraction(3.05) == (3, 1.0)  # too little past 3 to be worth a 4th
    assert budget.epochs_and_fraction(2.9999999) == (3, 1.0)
    assert budget.epochs_and_fraction(0.3) == (1, 0.3)


def test_the_shares_are_spent_to_the_second_not_in_whole_epochs(costs):
    for minutes in (10, 20, 45):
        plan = budget.plan_series(costs, minutes, planning_seconds=40)
        assert plan.total_seconds == pytest.approx(60 * minutes, rel=0.02)


def test_a_plan_made_again_on_a_slower_machine_trains_less_in_the_time_left(costs):
    plan = budget.plan_series(costs, 30, planning_seconds=40)
    left = 60 * 30 - 40 - plan.notebook_seconds["01_data_exploration.ipynb"] - 12
    same = budget.replan(plan, set(), left, speed=1.0)
    slower = budget.replan(plan, set(), left, speed=2.0)
    for name in ("cnn", "resnet9"):
        assert passes(slower, name) < passes(same, name)
    for again in (same, slower):  # what is left to run fills the time left
        remaining = [name for name in again.notebook_seconds if name[:2] in ("03", "04")]
        assert sum(again.notebook_seconds[name] for name in remaining) == pytest.approx(
            left, rel=0.02
        )
    assert "0.50x the speed" in slower.describe()


def test_a_plan_made_again_leaves_time_for_notebooks_slower_than_usual(costs):
    plan = budget.plan_series(costs, 30, planning_seconds=40)
    usual = budget.replan(plan, {"mlp"}, 60 * 20, fixed=1.0)
    slow = budget.replan(plan, {"mlp"}, 60 * 20, fixed=3.0)
    assert passes(slow, "resnet9") < passes(usual, "resnet9")
    assert "fixed work 3.0x the usual" in slow.describe()


def test_a_plan_made_again_keeps_the_models_already_trained(costs):
    plan = budget.plan_series(costs, 30, planning_seconds=40)
    again = budget.replan(plan, {"mlp"}, 60 * 10, speed=1.0)
    assert again.models["mlp"] == plan.models["mlp"]
    assert passes(again, "resnet9") < passes(plan, "resnet9")


def test_a_plan_made_again_with_no_time_left_trains_the_least_and_says_so(costs):
    plan = budget.plan_series(costs, 30, planning_seconds=40)
    again = budget.replan(plan, {"mlp"}, 10, speed=1.0)
    for name in ("cnn", "resnet9"):
        assert (again.models[name].epochs, again.models[name].fraction) == (1, budget.MIN_FRACTION)
        assert "budget is spent" in again.models[name].warning


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


@pytest.mark.slow
def test_a_plan_is_made_on_this_machine_and_reused_from_the_run_folder(tmp_path):
    source = profiles.open_data("smoke", root=tmp_path / "data")
    plan = budget.plan_for_notebook(tmp_path / "run", "smoke", source, 5)
    assert plan.planning_seconds > 0 and "device=cpu" in plan.machine
    assert set(plan.models) == {"mlp", "cnn", "resnet9"}
    # Notebook 03 for the next model reads the saved plan; it does not time the models again.
    saved = json.loads((tmp_path / "run" / plans.PLAN_FILE).read_text())
    saved["models"]["cnn"]["epochs"] = 7
    (tmp_path / "run" / plans.PLAN_FILE).write_text(json.dumps(saved))
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
    plan = plans.load_plan(out)
    info = json.loads((out / "mlp" / "run.json").read_text())
    history = json.loads((out / "mlp" / "history.json").read_text())
    assert info["settings"]["epochs"] == plan.models["mlp"].epochs == len(history)
    assert info["settings"]["train_fraction"] == plan.models["mlp"].fraction
    summary = (out / runner.SUMMARY_FILE).read_text()
    assert "## Time budget: 5 min" in summary and "| 03_training.ipynb (MODEL=mlp" in summary
    assert "| planned (min) | planned again (min) | actual (min) |" in summary
    assert "planned again with" in plan.describe()  # before the notebook, from the minutes left
    assert plan.machine in summary


def test_a_demo_is_priced_on_no_more_images_than_the_split_holds():
    small = costs.ModelCost("mlp", 64, 1e-3, 2_000, 500, 1e-4, 3e-5)
    demo = {"images": 10_000, "test_images": 2_000, "epochs": 1}
    assert budget._demo_seconds(demo, small, runs=1) == pytest.approx(small.epoch_seconds())
