"""A time budget's plan: each model's line, the plan's file in the run folder, its words.

``labutils.course.budget`` makes plans; notebook 03, the runner and the summary read them. The
accuracy each line expects is quoted from ``measured_runs.json``: runs of the lab on a copy of
CIFAR-10, shipped with the package.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labutils.course.costs import ModelCost
from labutils.data import write_atomically

PLAN_FILE = "plan.json"
MEASURED_RUNS_FILE = Path(__file__).with_name("measured_runs.json")


@functools.cache
def measured_runs() -> tuple[dict, ...]:
    """The runs whose test accuracy a plan quotes (``measured_runs.json``)."""
    return tuple(json.loads(MEASURED_RUNS_FILE.read_text())["runs"])


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
    costs: dict[str, ModelCost] = field(default_factory=dict)  # as timed while planning
    demo_costs: dict[str, ModelCost] = field(default_factory=dict)
    full_epochs: dict[str, int] = field(default_factory=dict)  # the profile's, the proportions
    probe_seconds: float = 0.0  # costs.speed_probe when the models were timed
    note: str = ""  # why and when the plan was made again, if it was

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
            *([f"  {self.note}"] if self.note else []),
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
        for key in ("costs", "demo_costs"):
            values[key] = {name: ModelCost(**cost) for name, cost in values.get(key, {}).items()}
        return cls(**values)


# --------------------------------------------------------------------------- words and file


def expected_accuracy(
    model: str, epochs: int, fraction: float, batch_size: int | None = None
) -> str:
    """The accuracy of the nearest measured run (by passes over the split), in words."""
    rows = [row for row in measured_runs() if row["model"] == model]
    if not rows:
        return "not measured"
    passes = epochs * fraction
    nearest = min(
        rows,
        key=lambda row: (
            abs(math.log(row["epochs"] * row["fraction"] / passes)),
            row["batch_size"] != batch_size,
            -row["epochs"],
        ),
    )
    accuracy = nearest["test_accuracy"]
    same_batch = batch_size is None or batch_size == nearest["batch_size"]
    if nearest["epochs"] == epochs and abs(nearest["fraction"] - fraction) < 0.01 and same_batch:
        return f"{accuracy:.1%}"
    measured = f"{nearest['epochs']} epoch{'s' if nearest['epochs'] != 1 else ''}"
    if nearest["fraction"] < 1:
        measured += f" on {nearest['fraction']:.0%}"
    if not same_batch:
        measured += f", batch {nearest['batch_size']}"
    return f"~{accuracy:.1%} (measured: {measured})"


def save_plan(plan: Plan, run_folder: str | os.PathLike) -> Path:
    path = Path(run_folder) / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, plan.to_json().encode())
    return path


def load_plan(run_folder: str | os.PathLike) -> Plan | None:
    path = Path(run_folder) / PLAN_FILE
    return Plan.from_json(path.read_text()) if path.is_file() else None
