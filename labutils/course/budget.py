"""Time budgets: a series sized to the minutes a student has, on the machine in front of them.

    python -m labutils run --budget 60

first times a few training steps of each model on this machine, in the precision the run will
use, then picks each model's epochs (and, where even one epoch does not fit, a fraction of the
training split) so that the whole series, notebooks 01 to 04, fits the budget:

1. What does not depend on the epochs is priced first: each notebook's fixed cost, the test
   passes of notebooks 03 and 04, and the two demos of notebook 03 (the augmentation demo is
   made smaller when it would take more than a tenth of the budget).
2. The rest is shared between the models in the profile's proportions: a budget that buys
   half the profile's training gives every model half its epochs (never more than 20, the
   report's; never less than one epoch on a part of the split).
3. Whatever is left buys whole epochs, first for the model furthest behind its share.

Two speed choices are made on the way, where the profile offers them: the fastest of a model's
batch sizes (``batch_choices``; the CNN's 64 or 128) and ``torch.compile`` for the models
worth trying (``compile_candidates``), kept only when its compile time, measured here, is
repaid within the planned run.

The plan is saved as ``plan.json`` in the run folder. Notebook 03 reads it there, so each model
trains as planned; ``summary.md`` puts planned and actual minutes side by side. The accuracy
each plan line expects comes from ``MEASURED``: runs of the lab on a copy of CIFAR-10.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from labutils import loaders, models, runtime, sources
from labutils.checks import check_positive
from labutils.cifar_format import write_atomically
from labutils.course import profiles
from labutils.engine import timing

PLAN_FILE = "plan.json"
MAX_EPOCHS = 20  # the report's epochs: more buys little here
MIN_FRACTION = 0.05  # below a twentieth of the split, a run shows nothing worth comparing
FEW_EPOCHS = 3  # fewer (counted in whole passes over the split) earns a warning
CHEAP = 0.10  # a model whose FEW_EPOCHS cost at most this part of the training time gets them
# torch.compile is timed (which costs a compile) only for a model planned to train at least
# this long: on 2 cores the CNN compiles in about a minute and then steps 1.4x faster.
COMPILE_TRIAL_SECONDS = 300
DEMO_SHARE = 0.10  # the augmentation demo gets at most this part of the budget
TIMED_STEPS = 4  # training steps timed per model, after one untimed warm-up step
# Notebook 03 scores the reloaded model on the whole test split with the evaluate the student
# wrote: in fp32, with no autocast (about twice train.evaluate's time on a CPU with native
# bf16); the untrained model and the evaluate exercise's check add three passes over 1 000.
NOTEBOOK_TEST_PASSES = 1.3

# Seconds each notebook spends besides the work priced from the timings below: starting a
# kernel, importing torch, reading the data files, drawing and saving figures. Measured on the
# series' runs (2-core Xeon with AMX and 2-core Zen 4) and rounded up.
NOTEBOOK_SECONDS = {
    "01_data_exploration.ipynb": 20.0,
    "02_models.ipynb": 25.0,
    "03_training.ipynb": 20.0,
    "04_comparison.ipynb": 30.0,
}

# Test accuracy reached on cifar10-dev (40 000 JPEG-re-encoded training images; its test_batch
# held out) by the lab's settings for each model: (model, epochs, fraction of the training
# split, batch size, accuracy, the CPU of the run). The plan quotes the nearest row.
ZEN4 = "2-core AMD EPYC (Zen 4, AVX512-BF16)"
XEON = "2-core Intel Xeon (AMX)"
MEASURED = (
    ("mlp", 1, 0.15, 256, 0.341, XEON),
    ("mlp", 6, 1.0, 256, 0.534, XEON),
    ("mlp", 7, 1.0, 256, 0.543, XEON),
    ("mlp", 12, 1.0, 256, 0.556, ZEN4),
    ("mlp", 12, 1.0, 256, 0.562, XEON),
    ("cnn", 1, 0.13, 128, 0.337, XEON),
    ("cnn", 1, 0.40, 64, 0.492, XEON),
    ("cnn", 1, 0.44, 64, 0.480, XEON),
    ("cnn", 1, 0.69, 64, 0.558, XEON),
    ("cnn", 10, 1.0, 128, 0.775, ZEN4),
    ("cnn", 10, 1.0, 64, 0.784, XEON),  # compiled
    ("resnet9", 1, 0.14, 256, 0.105, XEON),  # chance: too few steps for batch norm and lr
    ("resnet9", 1, 0.35, 256, 0.309, XEON),
    ("resnet9", 1, 0.40, 256, 0.335, XEON),
    ("resnet9", 1, 0.63, 256, 0.463, XEON),
    ("resnet9", 5, 1.0, 256, 0.842, XEON),
    ("resnet9", 8, 1.0, 256, 0.870, ZEN4),
    ("resnet9", 9, 1.0, 256, 0.875, ZEN4),
)


class BudgetError(ValueError):
    """A budget the series cannot be planned into; the message says what would fit."""


def default_budget(profile: str) -> float | None:
    """The profile's budget in minutes (``cpu``: 60), or None where it trains fixed epochs."""
    return profiles.get_profile(profile).get("budget_minutes")


# --------------------------------------------------------------------------- costs


@dataclass
class ModelCost:
    """What one model costs on this machine, at the batch size the plan will use."""

    model: str
    batch_size: int
    max_lr: float
    train_images: int
    test_images: int
    train_image_seconds: float  # one training image: its share of a step, data included
    test_image_seconds: float  # one test image: its share of an evaluation batch
    fp32_test_image_seconds: float | None = None  # the same in fp32 (None: the same as above)
    compile_seconds: float = 0.0  # torch.compile's time before the first step, when compiled
    compiled: bool = False  # train_image_seconds are then those of the compiled steps

    def epoch_seconds(self, fraction: float = 1.0) -> float:
        """One epoch on ``fraction`` of the training split, then one pass over the test split."""
        return (
            fraction * self.train_images * self.train_image_seconds
            + self.test_images * self.test_image_seconds
        )

    @property
    def test_pass_seconds(self) -> float:
        return self.test_images * self.test_image_seconds

    @property
    def fp32_test_pass_seconds(self) -> float:
        return self.test_images * (self.fp32_test_image_seconds or self.test_image_seconds)


def time_model(
    name: str,
    batch_size: int,
    augment: bool,
    train_split: tuple,
    test_split: tuple,
    device: torch.device,
    precision: str = "auto",
    seed: int = 0,
) -> tuple[float, float, float]:
    """Seconds per training image, per test image, and per test image in fp32 for a fresh
    ``name`` on this machine."""
    model = models.build_model(name).to(device)
    channels_last = runtime.use_channels_last(model, device)
    common = dict(device=device, channels_last=channels_last)
    train_loader = loaders.TensorLoader(
        *train_split, batch_size, shuffle=True, augment=augment, seed=seed, **common
    )
    test_loader = loaders.TensorLoader(*test_split, max(batch_size, 500), **common)
    epoch = timing.measure_epoch_seconds(model, train_loader, TIMED_STEPS, device, precision)
    test = timing.measure_evaluation_seconds(model, test_loader, 2, device, precision)
    fp32 = test
    if runtime.select_precision(device, precision) is not None:
        fp32 = timing.measure_evaluation_seconds(model, test_loader, 2, device, "fp32")
    images = test_loader.num_images
    return epoch / (len(train_loader) * batch_size), test / images, fp32 / images


def measure_costs(
    profile: str,
    train_split: tuple,
    test_split: tuple,
    device: torch.device,
    precision: str = "auto",
    seed: int = 0,
    synthetic: bool = False,
) -> dict[str, ModelCost]:
    """Time every model of the series at its profile settings; where the profile offers
    several batch sizes for a model (a speed choice, not a lesson), keep the fastest per image,
    its peak learning rate scaled by the square root of the batch ratio (Adam's usual rule)."""
    costs = {}
    for name in models.MODEL_NAMES:
        settings = profiles.training_settings(profile, name, synthetic)
        choices = profiles.get_profile(profile).get("batch_choices", {}).get(name, ())
        best = None
        for batch_size in dict.fromkeys((settings["batch_size"], *choices)):
            per_train, per_test, fp32_test = time_model(
                name,
                batch_size,
                settings["augment"],
                train_split,
                test_split,
                device,
                precision,
                seed,
            )
            if best is None or per_train < best.train_image_seconds:
                max_lr = settings["max_lr"] * math.sqrt(batch_size / settings["batch_size"])
                best = ModelCost(
                    name,
                    batch_size,
                    float(f"{max_lr:.2g}"),
                    len(train_split[1]),
                    len(test_split[1]),
                    per_train,
                    per_test,
                    fp32_test,
                )
        costs[name] = best
    return costs


def measure_demo_costs(
    profile: str,
    costs: dict[str, ModelCost],
    train_split: tuple,
    test_split: tuple,
    device: torch.device,
    precision: str = "auto",
) -> dict[str, ModelCost]:
    """The MLP and the CNN at the batch sizes of notebook 03's demos, where those differ from
    the ones timed already (an MLP step of 64 images costs far more per image than one of 256)."""
    settings = profiles.get_profile(profile)
    demos = {
        "mlp": (settings["divergence_demo"]["batch_size"], False),
        "cnn": (settings["augmentation_demo"]["batch_size"], True),
    }
    demo_costs = {}
    for name, (batch_size, augment) in demos.items():
        if batch_size == costs[name].batch_size:
            continue
        per_train, per_test, _ = time_model(
            name, batch_size, augment, train_split, test_split, device, precision
        )
        demo_costs[name] = replace(
            costs[name],
            batch_size=batch_size,
            train_image_seconds=per_train,
            test_image_seconds=per_test,
        )
    return demo_costs


# --------------------------------------------------------------------------- the plan


@dataclass
class ModelPlan:
    model: str
    epochs: int
    fraction: float  # of the training split, each epoch
    batch_size: int
    max_lr: float
    epoch_seconds: float
    seconds: float  # the whole of notebook 03 for this model, demos included
    expected: str  # the accuracy such a run reached on cifar10-dev, in words
    warning: str | None = None
    compiled: bool = False  # trained through torch.compile: it pays for itself in this run

    def settings(self) -> dict:
        """What this plan changes in the model's training settings."""
        return dict(
            epochs=self.epochs,
            train_fraction=self.fraction,
            batch_size=self.batch_size,
            max_lr=self.max_lr,
            compile=self.compiled,
        )


@dataclass
class Plan:
    budget_minutes: float
    profile: str
    data: str
    seed: int
    machine: str
    planning_seconds: float
    models: dict[str, ModelPlan]
    augmentation_demo: dict
    notebook_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return self.planning_seconds + sum(self.notebook_seconds.values())

    def settings(self, model: str) -> dict:
        return self.models[model].settings()

    def describe(self) -> str:
        """The plan, model by model, as the runner and notebook 03 print it."""
        lines = [
            f"Plan for a budget of {self.budget_minutes:g} min on {self.machine} "
            f"(profile {self.profile}, {self.data}):",
            f"  {'model':<8} {'epochs':>6}  {'of the split':>12}  {'batch':>5}  {'max_lr':>7}  "
            f"{'compiled':>8}  {'minutes':>7}  expected test accuracy",
        ]
        for plan in self.models.values():
            compiled = "yes" if plan.compiled else "no"
            lines.append(
                f"  {plan.model:<8} {plan.epochs:>6}  {plan.fraction:>12.0%}  {plan.batch_size:>5}"
                f"  {plan.max_lr:>7.2g}  {compiled:>8}  {plan.seconds / 60:>7.1f}  {plan.expected}"
            )
        others = self.total_seconds - sum(plan.seconds for plan in self.models.values())
        lines.append(
            f"  notebooks 01, 02 and 04 and this plan: {others / 60:.1f} min; "
            f"in all {self.total_seconds / 60:.1f} min"
        )
        lines += [f"  warning: {plan.warning}" for plan in self.models.values() if plan.warning]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        values = json.loads(text)
        values["models"] = {name: ModelPlan(**plan) for name, plan in values["models"].items()}
        return cls(**values)


def expected_accuracy(
    model: str, epochs: int, fraction: float, batch_size: int | None = None
) -> str:
    """The accuracy of the nearest measured run (by passes over the split), in words."""
    rows = [row for row in MEASURED if row[0] == model]
    if not rows:
        return "not measured"
    passes = epochs * fraction
    nearest = min(
        rows,
        key=lambda row: (abs(math.log(row[1] * row[2] / passes)), row[3] != batch_size, -row[1]),
    )
    _, row_epochs, row_fraction, row_batch, accuracy, _ = nearest
    same_batch = batch_size is None or batch_size == row_batch
    if row_epochs == epochs and abs(row_fraction - fraction) < 0.01 and same_batch:
        return f"{accuracy:.1%}"
    measured = f"{row_epochs} epoch{'s' if row_epochs != 1 else ''}"
    if row_fraction < 1:
        measured += f" on {row_fraction:.0%}"
    if not same_batch:
        measured += f", batch {row_batch}"
    return f"~{accuracy:.1%} (measured: {measured})"


def _warning(model: str, epochs: int, fraction: float, full_epochs: int) -> str | None:
    if epochs * fraction >= FEW_EPOCHS:
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
    test_images = demo.get("test_images", cost.test_images)
    per_epoch = demo["images"] * cost.train_image_seconds + test_images * cost.test_image_seconds
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


def _share(costs, full_epochs, available) -> tuple[dict[str, int], dict[str, float]]:
    """Epochs and fraction per model so that the training fits ``available`` seconds."""

    def full_cost(names):
        return sum(full_epochs[name] * costs[name].epoch_seconds() for name in names)

    # A model whose share would buy fewer than FEW_EPOCHS, but for whom they cost next to
    # nothing (the MLP), gets them: the others lose little by it.
    scale = available / full_cost(costs)
    epochs, fractions, ideal = {}, {}, {}
    for name, cost in costs.items():
        few = min(full_epochs[name], FEW_EPOCHS)
        if full_epochs[name] * scale < few and few * cost.epoch_seconds() <= CHEAP * available:
            epochs[name], fractions[name], ideal[name] = few, 1.0, few
    left = available - sum(epochs[name] * costs[name].epoch_seconds() for name in epochs)
    shared = [name for name in costs if name not in epochs]
    scale = left / full_cost(shared) if shared else 1.0
    for name in shared:
        cost = costs[name]
        ideal[name] = full_epochs[name] * scale
        if ideal[name] >= 1:
            epochs[name], fractions[name] = min(MAX_EPOCHS, int(ideal[name])), 1.0
            continue
        # Not even one epoch: one pass over the part of the split its share buys.
        train_seconds = ideal[name] * cost.epoch_seconds() - cost.test_pass_seconds
        fraction = math.floor(100 * train_seconds / cost.epoch_seconds(1.0)) / 100
        if fraction < MIN_FRACTION:
            raise BudgetError(
                f"{available / 60:.1f} min of training leaves {name} less than "
                f"{MIN_FRACTION:.0%} of one epoch on this machine: give the series more minutes "
                f"(one epoch of every model takes "
                f"{sum(cost.epoch_seconds() for cost in costs.values()) / 60:.1f} min here)."
            )
        epochs[name], fractions[name] = 1, fraction
    # Spend what rounding down left on whole epochs, first for the model furthest behind its
    # share; none gets more than its profile's epochs unless its share bought more.
    spent = sum(costs[name].epoch_seconds(fractions[name]) * epochs[name] for name in costs)
    while True:
        candidates = [
            name
            for name in costs
            if fractions[name] == 1.0
            and epochs[name] < min(MAX_EPOCHS, max(full_epochs[name], math.ceil(ideal[name])))
            and spent + costs[name].epoch_seconds() <= available
        ]
        if not candidates:
            break
        name = min(candidates, key=lambda n: epochs[n] / ideal[n])
        epochs[name] += 1
        spent += costs[name].epoch_seconds()
    return epochs, fractions


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
) -> Plan:
    """Share ``budget_minutes`` between the notebooks of the series, from measured ``costs``
    (and ``demo_costs``: the MLP and the CNN at their demos' batch sizes, where measured)."""
    check_positive("budget", budget_minutes)
    settings = profiles.get_profile(profile)
    budget = 60 * budget_minutes
    full_epochs = {
        name: profiles.training_settings(profile, name, synthetic)["epochs"] for name in costs
    }
    demo_costs = {**costs, **(demo_costs or {})}
    augmentation = _fit_demo(settings["augmentation_demo"], demo_costs["cnn"], budget)
    divergence = settings["divergence_demo"]
    mlp = demo_costs["mlp"]
    # Notebook 03 per model, besides training: its test passes, the steps
    # measure_epoch_seconds times, and the demo it shows.
    extras = {
        name: NOTEBOOK_SECONDS["03_training.ipynb"]
        + NOTEBOOK_TEST_PASSES * cost.fp32_test_pass_seconds
        + (TIMED_STEPS + 1) * cost.batch_size * cost.train_image_seconds
        for name, cost in costs.items()
    }
    # The divergence demo trains the MLP twice; its range test takes steps of 20 images.
    extras["mlp"] += _demo_seconds(divergence, mlp, runs=2) + (
        settings["range_test_steps"] * 20 * mlp.train_image_seconds
    )
    extras["cnn"] += _demo_seconds(augmentation, demo_costs["cnn"], runs=2)
    for name, cost in costs.items():
        extras[name] += cost.compile_seconds
    others = {
        "01_data_exploration.ipynb": NOTEBOOK_SECONDS["01_data_exploration.ipynb"],
        "02_models.ipynb": NOTEBOOK_SECONDS["02_models.ipynb"],
        "04_comparison.ipynb": NOTEBOOK_SECONDS["04_comparison.ipynb"]
        + sum(cost.test_pass_seconds for cost in costs.values()),
    }
    available = budget - planning_seconds - sum(others.values()) - sum(extras.values())
    if available <= 0:
        raise BudgetError(
            f"A budget of {budget_minutes:g} min does not cover what the series does besides "
            f"training ({(budget - available) / 60:.1f} min on this machine): give it more."
        )
    epochs, fractions = _share(costs, full_epochs, available)
    plans = {}
    for name, cost in costs.items():
        training = epochs[name] * cost.epoch_seconds(fractions[name])
        plans[name] = ModelPlan(
            model=name,
            epochs=epochs[name],
            fraction=fractions[name],
            batch_size=cost.batch_size,
            max_lr=cost.max_lr,
            epoch_seconds=round(cost.epoch_seconds(fractions[name]), 2),
            seconds=round(extras[name] + training, 1),
            expected=expected_accuracy(name, epochs[name], fractions[name], cost.batch_size),
            warning=_warning(name, epochs[name], fractions[name], full_epochs[name]),
            compiled=cost.compiled,
        )
    notebook_seconds = {
        "01_data_exploration.ipynb": others["01_data_exploration.ipynb"],
        "02_models.ipynb": others["02_models.ipynb"],
        **{f"03_training_{name}.ipynb": plans[name].seconds for name in plans},
        "04_comparison.ipynb": others["04_comparison.ipynb"],
    }
    return Plan(
        budget_minutes=budget_minutes,
        profile=profile,
        data=data,
        seed=seed,
        machine=machine,
        planning_seconds=round(planning_seconds, 1),
        models=plans,
        augmentation_demo=augmentation,
        notebook_seconds={name: round(seconds, 1) for name, seconds in notebook_seconds.items()},
    )


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
    train_split, test_split = source.load("train"), source.load("test")
    synthetic = source.is_synthetic
    costs = measure_costs(profile, train_split, test_split, device, precision, seed, synthetic)
    demo_costs = measure_demo_costs(profile, costs, train_split, test_split, device, precision)
    dtype = runtime.select_precision(device, precision)
    machine = runtime.describe_runtime(device, dtype, channels_last=False).partition(
        " memory_format="
    )[0]

    def plan_from(costs):
        return plan_series(
            costs,
            budget_minutes,
            profile,
            source.label,
            seed,
            machine,
            planning_seconds=time.perf_counter() - start,
            synthetic=synthetic,
            demo_costs=demo_costs,
        )

    plan = plan_from(costs)
    compiled = try_compiling(profile, plan, costs, train_split, device, precision, seed)
    return plan_from(compiled) if compiled != costs else plan


def try_compiling(
    profile: str,
    plan: Plan,
    costs: dict[str, ModelCost],
    train_split: tuple,
    device: torch.device,
    precision: str = "auto",
    seed: int = 0,
) -> dict[str, ModelCost]:
    """``costs`` with the compiled steps of every model that the profile lists as worth trying
    (``compile_candidates``), that trains long enough in ``plan`` for a compiler to pay
    (COMPILE_TRIAL_SECONDS), and whose saving over the planned run, timed here, exceeds the
    compile time; the other models' costs as they were."""
    costs = dict(costs)
    for name in profiles.get_profile(profile).get("compile_candidates", ()):
        model_plan, cost = plan.models[name], costs[name]
        images = model_plan.epochs * round(model_plan.fraction * cost.train_images)
        if images * cost.train_image_seconds < COMPILE_TRIAL_SECONDS:
            continue
        model = models.build_model(name).to(device)
        loader = loaders.TensorLoader(
            *train_split,
            cost.batch_size,
            shuffle=True,
            augment=profiles.training_settings(profile, name)["augment"],
            seed=seed,
            device=device,
            channels_last=runtime.use_channels_last(model, device),
        )
        compile_seconds, epoch = timing.measure_compiled_epoch_seconds(
            model, loader, TIMED_STEPS, device, precision
        )
        per_image = epoch / (len(loader) * cost.batch_size)
        saving = images * (cost.train_image_seconds - per_image)
        pays = saving > compile_seconds
        print(
            f"{name}: torch.compile takes {compile_seconds:.0f} s here and would save "
            f"{saving:.0f} s of this run's training: {'compiled' if pays else 'eager'}",
            flush=True,
        )
        if pays:
            costs[name] = replace(
                cost, train_image_seconds=per_image, compile_seconds=compile_seconds, compiled=True
            )
    return costs


def save_plan(plan: Plan, run_folder: str | os.PathLike) -> Path:
    path = Path(run_folder) / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, plan.to_json().encode())
    return path


def load_plan(run_folder: str | os.PathLike) -> Plan | None:
    path = Path(run_folder) / PLAN_FILE
    return Plan.from_json(path.read_text()) if path.is_file() else None


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
