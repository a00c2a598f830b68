"""Time budgets: a series sized to the minutes a student has, on the machine in front of them.

    python -m labutils run --budget 60

first times each model on this machine (``labutils.course.costs``), then plans how long each
trains so that the whole series, notebooks 01 to 04, fills the budget:

1. What does not depend on training is priced first: each notebook's fixed cost, the test
   passes of notebooks 03 and 04, and the two demos of notebook 03 (the augmentation demo is
   made smaller when it would take more than a tenth of the budget).
2. The rest is shared between the models in the profile's proportions: a budget that buys
   half the profile's training gives every model half its passes over the training split
   (never more than 20 epochs, the report's). A share need not be whole epochs: 3.4 passes
   train 4 epochs on 85% of the split.
3. Between notebooks the runner plans the models still to train again, from the minutes left
   and the machine's speed at that moment (``replan``): a machine that slows down or speeds up
   mid-run still spends its budget.

A budget too small for the series is refused with the smallest one that fits this machine.

The plan (``labutils.course.plans``) is saved as ``plan.json`` in the run folder. Notebook 03
reads it there, so each model trains as planned; ``summary.md`` puts planned and actual minutes
side by side.
"""

from __future__ import annotations

import math
import os
import time

import torch

from labutils import runtime, sources
from labutils.checks import check_positive
from labutils.course import costs as measuring
from labutils.course import profiles
from labutils.course.costs import ModelCost
from labutils.course.plans import ModelPlan, Plan, expected_accuracy, load_plan, save_plan

MAX_EPOCHS = 20  # the report's epochs: more buys little here
MIN_FRACTION = 0.05  # below a twentieth of the split, a run shows nothing worth comparing
MIN_REMAINDER = 0.1  # a share this far past whole epochs trains them whole, not one more
FEW_EPOCHS = 3  # fewer passes over the split earn a warning
CHEAP = 0.10  # a model whose FEW_EPOCHS cost at most this part of the training time gets them
DEMO_SHARE = 0.10  # the augmentation demo gets at most this part of the budget
# Notebook 03 scores the reloaded model on the whole test split with the evaluate the student
# wrote, in fp32 with no autocast; the untrained model and the evaluate exercise's check are
# scored the same way on this many test images each.
CHECK_IMAGES = 1000
# Seconds each notebook spends besides the work priced from the models' timings: starting a
# kernel, importing torch, reading the data files, drawing and saving figures. Measured on
# budget runs of the series (2-core AMD EPYC with AVX512-BF16, 2-core Intel Xeon with AMX).
NOTEBOOK_SECONDS = {
    "01_data_exploration.ipynb": 20.0,
    "02_models.ipynb": 12.0,
    "03_training.ipynb": 20.0,
    "04_comparison.ipynb": 15.0,
}


class BudgetError(ValueError):
    """A budget the series cannot be planned into; the message says what would fit."""


class _NoRoom(Exception):
    """The minutes given leave some part of the series no time: the budget is too small."""


def default_budget(profile: str) -> float | None:
    """The profile's budget in minutes (``cpu``: 60), or None where it trains fixed epochs."""
    return profiles.get_profile(profile).get("budget_minutes")


# --------------------------------------------------------------------------- pricing


def _warning(model: str, epochs: int, fraction: float, full_epochs: int) -> str | None:
    if epochs * fraction >= 0.9 * min(FEW_EPOCHS, full_epochs):  # 2.9 passes are enough
        return None
    what = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    if fraction < 1:
        what += f" on {fraction:.0%} of the training split"
    return (
        f"{model} gets only {what}: too little to compare it fairly with the others (the profile "
        f"trains it {full_epochs} epochs). A larger budget gives it more."
    )


def _demo_seconds(demo: dict, cost: ModelCost, runs: int) -> float:
    """``runs`` demo trainings of ``demo['epochs']`` epochs on ``demo['images']`` images, each
    epoch tested on ``demo['test_images']`` (all of the test split where not given)."""
    # Notebook 03 takes no more images than its splits hold (a small synthetic set).
    images = min(demo["images"], cost.train_images)
    test_images = min(demo.get("test_images", cost.test_images), cost.test_images)
    per_epoch = images * cost.train_image_seconds + test_images * cost.test_image_seconds
    return runs * demo["epochs"] * per_epoch


def _fit_demo(demo: dict, cost: ModelCost, budget_seconds: float) -> dict:
    """The augmentation demo, with fewer images where it would take over a tenth of the budget."""
    demo = dict(demo)
    seconds = _demo_seconds(demo, cost, runs=2)
    if seconds > DEMO_SHARE * budget_seconds:
        scale = DEMO_SHARE * budget_seconds / seconds
        demo["images"] = max(1000, int(demo["images"] * scale) // 100 * 100)
        demo["test_images"] = max(500, int(demo["test_images"] * scale) // 100 * 100)
    return demo


def _notebook_extras(plan: Plan, costs: dict, speed: float, fixed: float) -> dict[str, float]:
    """Seconds of notebook 03 per model besides training: its fixed cost (NOTEBOOK_SECONDS
    times ``fixed``), its test passes, the steps it times, its compile and its demo."""
    settings = profiles.get_profile(plan.profile)
    demo_costs = {name: cost.slowed(speed) for name, cost in plan.demo_costs.items()}
    demo_costs = {**costs, **{name: demo_costs[name] for name in costs if name in demo_costs}}
    extras = {
        name: fixed * NOTEBOOK_SECONDS["03_training.ipynb"]
        + cost.fp32_test_pass_seconds
        * (1 + 2 * min(CHECK_IMAGES, cost.test_images) / cost.test_images)
        + (measuring.TIMED_STEPS + 1) * cost.batch_size * cost.train_image_seconds
        + cost.compile_seconds
        for name, cost in costs.items()
    }
    if "mlp" in extras:  # the divergence demo trains the MLP twice; its range test, 20 a step
        mlp = demo_costs["mlp"]
        extras["mlp"] += _demo_seconds(settings["divergence_demo"], mlp, runs=2)
        extras["mlp"] += settings["range_test_steps"] * 20 * mlp.train_image_seconds
    if "cnn" in extras:
        extras["cnn"] += _demo_seconds(plan.augmentation_demo, demo_costs["cnn"], runs=2)
    return extras


def _comparison_seconds(costs: dict[str, ModelCost], fixed: float) -> float:
    """Notebook 04: its fixed cost (NOTEBOOK_SECONDS times ``fixed``), a test pass per model."""
    passes = sum(cost.test_pass_seconds for cost in costs.values())
    return fixed * NOTEBOOK_SECONDS["04_comparison.ipynb"] + passes


# --------------------------------------------------------------------------- sharing


def _shares(costs: dict[str, ModelCost], full_epochs: dict, available: float) -> dict:
    """Seconds of training per model: in the profile's proportions, none past MAX_EPOCHS; a
    model whose proportional share buys fewer than FEW_EPOCHS, when they cost next to nothing
    (the MLP), gets them, and the others lose little by it."""
    epoch = {name: cost.epoch_seconds() for name, cost in costs.items()}
    shares: dict[str, float] = {}
    while len(shares) < len(costs):
        shared = [name for name in costs if name not in shares]
        scale = (available - sum(shares.values())) / sum(
            full_epochs[name] * epoch[name] for name in shared
        )
        capped = {
            name: MAX_EPOCHS * epoch[name]
            for name in shared
            if full_epochs[name] * scale > MAX_EPOCHS
        }
        few = {name: min(full_epochs[name], FEW_EPOCHS) for name in shared}
        cheap = {
            name: few[name] * epoch[name]
            for name in shared
            if full_epochs[name] * scale < few[name]
            and few[name] * epoch[name] <= CHEAP * available
        }
        fixed = (
            capped or cheap or {name: full_epochs[name] * scale * epoch[name] for name in shared}
        )
        shares.update(fixed)
    return shares


def _passes_for(cost: ModelCost, seconds: float) -> float:
    """The passes over the training split ``seconds`` buy, each epoch ending in a test pass."""
    for epochs in range(1, MAX_EPOCHS + 1):
        passes = (seconds - epochs * cost.test_pass_seconds) / cost.train_pass_seconds
        if passes <= epochs:
            return passes if epochs == 1 else max(passes, epochs - 1.0)
    return float(MAX_EPOCHS)


def epochs_and_fraction(passes: float) -> tuple[int, float]:
    """Whole epochs and the part of the split each trains on, for ``passes`` over the split:
    3.4 passes are 4 epochs on 85% of it; 3.05 are 3 whole epochs."""
    passes = round(passes, 6)  # 2.9999999 of arithmetic are 3 passes
    whole = math.floor(passes)
    if whole >= 1 and passes - whole < MIN_REMAINDER:
        return whole, 1.0
    epochs = max(1, math.ceil(passes))
    return epochs, math.floor(100 * passes / epochs) / 100


def _model_plan(name: str, cost: ModelCost, passes: float, extra: float, full: int) -> ModelPlan:
    """One model's line of the plan: ``passes`` over the split, ``extra`` seconds besides."""
    epochs, fraction = epochs_and_fraction(passes)
    if fraction < MIN_FRACTION:
        raise _NoRoom(f"{name}'s training")
    return ModelPlan(
        model=name,
        epochs=epochs,
        fraction=fraction,
        batch_size=cost.batch_size,
        max_lr=cost.max_lr,
        epoch_seconds=round(cost.epoch_seconds(fraction), 2),
        seconds=round(extra + epochs * cost.epoch_seconds(fraction), 1),
        expected=expected_accuracy(name, epochs, fraction, cost.batch_size),
        warning=_warning(name, epochs, fraction, full),
        compiled=cost.compiled,
    )


def _model_plans(costs, full_epochs, extras, available) -> dict[str, ModelPlan]:
    """Each model's plan when its training shares ``available`` seconds; ``_NoRoom`` when one
    would get less than MIN_FRACTION of an epoch."""
    if available <= 0:
        raise _NoRoom("what the series does besides training")
    return {
        name: _model_plan(
            name, costs[name], _passes_for(costs[name], seconds), extras[name], full_epochs[name]
        )
        for name, seconds in _shares(costs, full_epochs, available).items()
    }


# --------------------------------------------------------------------------- planning


def _fill(plan: Plan) -> Plan:
    """``plan`` (its costs, demo and budget set) with every notebook planned into its budget."""
    extras = _notebook_extras(plan, plan.costs, 1.0, 1.0)
    others = {
        "01_data_exploration.ipynb": NOTEBOOK_SECONDS["01_data_exploration.ipynb"],
        "02_models.ipynb": NOTEBOOK_SECONDS["02_models.ipynb"],
        "04_comparison.ipynb": _comparison_seconds(plan.costs, 1.0),
    }
    budget = 60 * plan.budget_minutes
    available = budget - plan.planning_seconds - sum(others.values()) - sum(extras.values())
    plan.models = _model_plans(plan.costs, plan.full_epochs, extras, available)
    trained = {f"03_training_{name}.ipynb": model.seconds for name, model in plan.models.items()}
    seconds = {**others, **trained}
    order = ("01_data_exploration.ipynb", "02_models.ipynb", *trained, "04_comparison.ipynb")
    plan.notebook_seconds = {name: round(seconds[name], 1) for name in order}
    return plan


def _planned(costs, budget_minutes, profile, synthetic, demo_costs, **details) -> Plan:
    settings = profiles.get_profile(profile)
    cnn_demo = {**costs, **(demo_costs or {})}["cnn"]
    plan = Plan(
        budget_minutes=budget_minutes,
        profile=profile,
        models={},
        augmentation_demo=_fit_demo(settings["augmentation_demo"], cnn_demo, 60 * budget_minutes),
        costs=dict(costs),
        demo_costs=dict(demo_costs or {}),
        full_epochs={
            name: profiles.training_settings(profile, name, synthetic)["epochs"] for name in costs
        },
        **details,
    )
    return _fill(plan)


def smallest_budget(costs: dict[str, ModelCost], *args, **details) -> float:
    """The fewest minutes (to a tenth) ``plan_series`` plans ``costs`` into."""
    low, high = 0.0, 1.0
    while not _fits(costs, high, *args, **details):
        low, high = high, 2 * high
    while high - low > 0.05:
        middle = (low + high) / 2
        low, high = (low, middle) if _fits(costs, middle, *args, **details) else (middle, high)
    return math.ceil(high * 10) / 10


def _fits(costs, minutes, *args, **details) -> bool:
    try:
        _planned(costs, minutes, *args, **details)
    except _NoRoom:
        return False
    return True


def plan_series(
    costs: dict[str, ModelCost],
    budget_minutes: float,
    profile: str = "cpu",
    data: str = "CIFAR-10",
    seed: int = 0,
    machine: str = "",
    planning_seconds: float = 0.0,
    synthetic: bool = False,
    demo_costs: dict[str, ModelCost] | None = None,
    probe_seconds: float = 0.0,
) -> Plan:
    """Share ``budget_minutes`` between the notebooks of the series, from measured ``costs``
    (and ``demo_costs``: the MLP and the CNN at their demos' batch sizes, where measured)."""
    check_positive("budget", budget_minutes)
    args = (profile, synthetic, demo_costs)
    details = dict(data=data, seed=seed, machine=machine, probe_seconds=probe_seconds)
    details["planning_seconds"] = round(planning_seconds, 1)
    try:
        return _planned(costs, budget_minutes, *args, **details)
    except _NoRoom as error:
        smallest = smallest_budget(costs, *args, **details)
        raise BudgetError(
            f"A budget of {budget_minutes:g} min is too small for the series on this machine: "
            f"it leaves no time for {error}. The smallest budget that fits here is "
            f"{smallest:g} min: python -m labutils run --budget {smallest:g}"
        ) from None


def replan(
    plan: Plan, trained: set[str], seconds_left: float, speed: float = 1.0, fixed: float = 1.0
) -> Plan:
    """``plan`` again for the models not in ``trained``: their training shares the seconds left,
    on a machine ``speed`` times slower than when the models were timed (0.5: twice as fast),
    where a notebook's fixed cost is ``fixed`` times NOTEBOOK_SECONDS (as measured on the
    notebooks run so far). When too little is left, each trains the least a plan allows."""
    slowed = {name: cost.slowed(speed) for name, cost in plan.costs.items()}
    costs = {name: slowed[name] for name in plan.models if name not in trained}
    if not costs:
        return plan
    extras = _notebook_extras(plan, costs, speed, fixed)
    comparison = _comparison_seconds(slowed, fixed)
    try:
        models = _model_plans(
            costs, plan.full_epochs, extras, seconds_left - sum(extras.values()) - comparison
        )
    except _NoRoom:
        models = {
            name: _model_plan(name, cost, MIN_FRACTION, extras[name], plan.full_epochs[name])
            for name, cost in costs.items()
        }
        for model in models.values():
            model.warning = f"the budget is spent: {model.model} trains the least a plan allows"
    new = Plan(**{**plan.__dict__, "models": {**plan.models, **models}})
    new.notebook_seconds = {
        **plan.notebook_seconds,
        **{f"03_training_{name}.ipynb": model.seconds for name, model in models.items()},
        "04_comparison.ipynb": round(comparison, 1),
    }
    new.note = (
        f"planned again with {seconds_left / 60:.1f} min left, the machine at "
        f"{1 / speed:.2f}x the speed it was timed at, a notebook's fixed work {fixed:.1f}x "
        f"the usual"
    )
    return new


def make_plan(
    profile: str,
    source: sources.DataSource,
    budget_minutes: float,
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
) -> Plan:
    """Time the models on this machine and plan the series into ``budget_minutes``."""
    check_positive("budget", budget_minutes)
    start = time.perf_counter()
    device = runtime.select_device(device)
    # As notebook 03 trains: freed memory is reused, not fresh pages at every step (without it
    # the same steps take up to twice as long in a new process, and the plan prices too high).
    runtime.keep_freed_memory()
    train_split, test_split = source.load("train"), source.load("test")
    synthetic = source.is_synthetic
    splits = (train_split, test_split)
    timed = measuring.measure_costs(profile, *splits, device, precision, seed, synthetic)
    demo_costs = measuring.measure_demo_costs(profile, timed, *splits, device, precision)
    dtype = runtime.select_precision(device, precision)
    machine = runtime.describe_runtime(device, dtype, channels_last=False)
    probe = measuring.speed_probe(device, precision)

    def plan_from(costs):
        return plan_series(
            costs,
            budget_minutes,
            profile,
            source.label,
            seed,
            machine.partition(" memory_format=")[0],
            planning_seconds=time.perf_counter() - start,
            synthetic=synthetic,
            demo_costs=demo_costs,
            probe_seconds=probe,
        )

    plan = plan_from(timed)
    images = {
        name: model.epochs * round(model.fraction * timed[name].train_images)
        for name, model in plan.models.items()
    }
    compiled = measuring.try_compiling(profile, images, timed, train_split, device, precision, seed)
    return plan_from(compiled) if compiled != timed else plan


def resolve_budget(profile: str, budget_minutes: float | None, synthetic: bool) -> float | None:
    """The minutes a run is planned into, or None for fixed epochs. ``budget_minutes`` None takes
    the profile's budget, on real data only (on synthetic data a profile trains its short
    synthetic settings); 0 means fixed epochs."""
    if budget_minutes is None and not synthetic:
        budget_minutes = default_budget(profile)
    if not budget_minutes:
        return None
    check_positive("BUDGET_MINUTES", budget_minutes)
    return float(budget_minutes)


def plan_for_notebook(
    run_folder: str | os.PathLike,
    profile: str,
    source: sources.DataSource,
    budget_minutes: float | None,
    seed: int = 0,
) -> Plan | None:
    """The plan notebook 03 trains by: the one the series saved in ``run_folder`` when it
    matches (budget, profile, data, seed), else a new one, saved there for the next model."""
    budget_minutes = resolve_budget(profile, budget_minutes, source.is_synthetic)
    if budget_minutes is None:
        return None
    saved = load_plan(run_folder)
    if saved is not None:
        planned_for = (saved.budget_minutes, saved.profile, saved.data, saved.seed)
        if planned_for == (budget_minutes, profile, source.label, seed):
            return saved
    plan = make_plan(profile, source, budget_minutes, seed)
    save_plan(plan, run_folder)
    return plan
