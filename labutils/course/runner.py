"""The batch runner: the whole notebook series, executed with papermill into one run folder.

    python -m labutils run --profile cpu --data cifar10 --out runs/latest

leaves in the run folder

    notebooks/01_data_exploration.ipynb ...   each executed notebook, outputs included
    mlp/ cnn/ resnet9/                        each model's history, checkpoint, run.json, figures
    figures/                                  the comparison figures
    summary.md                                what ran, on which data and machine, and the results

Every notebook gets the same parameters (profile, data, run folder); notebook 03 runs once per
model. A failing notebook stops the series: the error names the notebook and the cell, and
everything that finished stays on disk, ``summary.md`` included.

With a time budget the series is planned before the first notebook, and planned again before
each model's notebook 03 from the minutes left and the machine's speed at that moment.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from labutils import models, runs, runtime, sources, train
from labutils.course import budget, costs, plans, profiles

NOTEBOOK_FOLDER = Path(__file__).resolve().parents[2] / "notebooks"
SUMMARY_FILE = "summary.md"
TITLE_PARAMETERS = ("MODEL", "SHOW_DIVERGENCE", "SHOW_AUGMENTATION", "EPOCHS")
SPEED_LIMIT = 4.0  # a plan made again believes the machine at most this much slower or faster
FIXED_NOTEBOOKS = ("01_data_exploration.ipynb", "02_models.ipynb")


@dataclass
class Step:
    """One notebook execution: which notebook, the name of its executed copy, its own parameters."""

    notebook: str
    output: str
    parameters: dict = field(default_factory=dict)
    seconds: float | None = None
    status: str = "not run"
    planned_seconds: float | None = None  # by the plan in force when it started, if any

    @property
    def title(self) -> str:
        extra = ", ".join(
            f"{name}={value}" for name, value in self.parameters.items() if name in TITLE_PARAMETERS
        )
        return f"{self.notebook}" + (f" ({extra})" if extra else "")


def series() -> list[Step]:
    """The lab's notebooks in order: 03 once per model; the divergence demo runs with the MLP only,
    the augmentation comparison with the CNN only."""
    steps = [
        Step("01_data_exploration.ipynb", "01_data_exploration.ipynb"),
        Step("02_models.ipynb", "02_models.ipynb"),
    ]
    for model in models.MODEL_NAMES:
        steps.append(
            Step(
                "03_training.ipynb",
                f"03_training_{model}.ipynb",
                {
                    "MODEL": model,
                    "SHOW_DIVERGENCE": model == "mlp",
                    "SHOW_AUGMENTATION": model == "cnn",
                },
            )
        )
    steps.append(Step("04_comparison.ipynb", "04_comparison.ipynb"))
    return steps


class NotebookFailed(RuntimeError):
    """A notebook of the series raised; the message names the notebook and the cell."""


def _failure_message(step: Step, output: Path, error: Exception) -> str:
    """Name the notebook, the cell and the error, and where the executed copy is."""
    import papermill

    if isinstance(error, papermill.PapermillExecutionError):
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        where = f"cell [{error.exec_count}] (`{first_line.strip()[:70]}`)"
        what = f"{error.ename}: {error.evalue}"
    else:
        where, what = "before its first cell ran", f"{type(error).__name__}: {error}"
    return (
        f"{step.title} failed in {where}: {what}\n"
        f"The executed notebook, with the error in place, is {output}; open it to see the "
        f"traceback. Everything that finished is kept in {output.parent.parent}."
    )


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables for the kernels started inside the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(step: Step, parameters: dict, out: Path, notebook_folder: Path, progress: bool) -> None:
    """Run one notebook with papermill (kernel ``python3``, working folder ``notebooks/``)."""
    import papermill

    from labutils.course.jupyter_kernels import LocalKernelManager

    output = out / "notebooks" / step.output
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            notebook_folder / step.notebook,
            output,
            parameters={**parameters, **step.parameters},
            kernel_name="python3",
            cwd=str(notebook_folder),
            progress_bar=progress,
            kernel_manager_class=LocalKernelManager,
        )
    except Exception as error:
        step.status = "FAILED"
        raise NotebookFailed(_failure_message(step, output, error)) from None
    finally:
        step.seconds = time.perf_counter() - start
    step.status = "ok"


def versions() -> str:
    """Python and the libraries the results depend on."""
    import papermill
    import torchvision

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, papermill {papermill.__version__}"
    )


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; an empty cell for ``None``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def _results_table(out: Path) -> str:
    """The comparison table from the run folders that exist so far; each model's runtime
    (device, precision, memory format) is the one its run.json recorded."""
    found = runs.find_runs(out) if out.is_dir() else []
    if not found:
        return "No model has finished training yet."
    rows = []
    for run in found:
        row = runs.summarize_run(run)
        rows.append(
            [
                row["model"],
                row["parameters"],
                row["epochs"],
                row["wall time (s)"],
                row["images/s"],
                f"{row['final test acc']:.2%}",
                f"{row['best test acc']:.2%}",
                run.info.get("runtime", ""),
            ]
        )
    header = [
        "model",
        "parameters",
        "epochs",
        "training time (s)",
        "images/s",
        "final test acc",
        "best test acc",
        "runtime",
    ]
    return markdown_table(header, rows)


def describe_machine() -> str:
    """This machine's default device and precision; the memory format is each model's own."""
    device = runtime.select_device("auto")
    line = runtime.describe_runtime(device, runtime.select_precision(device), channels_last=False)
    return line.partition(" memory_format=")[0]


def _budget_lines(plan: plans.Plan | None, steps: list[Step], total_seconds: float) -> list:
    """Planned against actual minutes, notebook by notebook, when a time budget planned the run:
    as first planned, as planned again when the notebook started, and as it took."""
    if plan is None:
        return []

    def minutes(seconds):
        return "" if seconds is None else f"{seconds / 60:.1f}"

    rows = [["planning (timing the models)", minutes(plan.planning_seconds), "", ""]]
    for step in steps:
        first = plan.notebook_seconds.get(step.output)
        rows.append(
            [step.title, minutes(first), minutes(step.planned_seconds), minutes(step.seconds)]
        )
    rows.append(["**all**", minutes(plan.total_seconds), "", f"**{minutes(total_seconds)}**"])
    budget_seconds = 60 * plan.budget_minutes
    off = (total_seconds - budget_seconds) / budget_seconds
    return [
        "",
        f"## Time budget: {plan.budget_minutes:g} min",
        "",
        f"Planned on {plan.machine}. The series took {total_seconds / 60:.1f} min, "
        f"{abs(off):.0%} {'over' if off > 0 else 'under'} the budget.",
        "",
        markdown_table(["notebook", "planned (min)", "planned again (min)", "actual (min)"], rows),
    ]


def _data_lines(source: sources.DataSource) -> list[str]:
    verified = (
        "yes: every file has the official md5"
        if source.verified
        else "no: synthetic data"
        if source.is_synthetic
        else "no: md5 not checked (--no-verify)"
    )
    return [f"- data: {source.label}, from `{source.root}`", f"- verified official: {verified}"]


def _figure_lines(out: Path) -> list[str]:
    figures = {
        "comparison_curves.png": "loss and accuracy of the three models",
        "comparison_test_accuracy.png": "test accuracy of the three models on one axis",
    }
    return [
        f"\n![{words}](figures/{name})"
        for name, words in figures.items()
        if (out / "figures" / name).is_file()
    ]


def collapse_line(out: Path) -> str | None:
    """One line naming each model whose test accuracy collapsed during training, or None."""
    found = runs.find_runs(out) if out.is_dir() else []
    warnings = {run.name: train.collapse_warning(run.history) for run in found if run.history}
    collapsed = [
        f"{name}: {warning.removeprefix('warning: ')}"
        for name, warning in warnings.items()
        if warning
    ]
    return "warning: " + " | ".join(collapsed) if collapsed else None


def write_summary(
    out: Path,
    steps: list[Step],
    profile: str,
    source: sources.DataSource,
    started: datetime,
    total_seconds: float,
    plan: plans.Plan | None = None,
) -> Path:
    """``summary.md``: what ran, on which data and machine, how long each notebook took, results."""
    notebook_rows = [
        [step.title, step.status, "" if step.seconds is None else f"{step.seconds:.0f}"]
        for step in steps
    ]
    collapse = collapse_line(out)
    lines = [
        f"# Lab run: profile `{profile}` on {source.label}",
        "",
        f"- started: {started:%Y-%m-%d %H:%M} UTC; total wall time {total_seconds / 60:.1f} min",
        *_data_lines(source),
        f"- machine: {describe_machine()}",
        f"- versions: {versions()}",
        "",
        "## Notebooks",
        "",
        markdown_table(["notebook", "status", "wall time (s)"], notebook_rows),
        *_budget_lines(plan, steps, total_seconds),
        "",
        "## Results (test accuracy measured on the test split)",
        "",
        _results_table(out),
        *([f"\n**{collapse}**"] if collapse else []),
        *_figure_lines(out),
    ]
    if source.is_synthetic:
        lines += [
            "",
            "**These numbers are on SYNTHETIC data, not CIFAR-10**: they show that the "
            "series runs, not how well the models do on real pictures.",
        ]
    path = out / SUMMARY_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def _first_plan(profile, source, budget_minutes, epochs, seed, out) -> plans.Plan | None:
    """The run's plan, from models timed here now, when it trains into a time budget."""
    if epochs is not None:
        return None
    planned_by_default = budget.default_budget(profile) is not None
    if budget_minutes is None and source.is_synthetic and planned_by_default:
        print("Synthetic data: the profile's short synthetic settings, no time budget.")
    if budget_minutes is None:
        return None
    print(f"Timing each model on this machine to plan {budget_minutes:g} min ...", flush=True)
    plan = budget.make_plan(profile, source, budget_minutes, seed)
    print(plan.describe())
    print("saved", plans.save_plan(plan, out), flush=True)
    return plan


def _limited(factor: float) -> float:
    """A factor kept within SPEED_LIMIT either way: a moment's spike is not the machine."""
    return min(max(factor, 1 / SPEED_LIMIT), SPEED_LIMIT)


def _fixed_factor(steps: list[Step]) -> float:
    """How much longer than ``budget.NOTEBOOK_SECONDS`` the notebooks that do nothing but
    their fixed work (01 and 02: a kernel, imports, data, figures) took here in this run."""
    done = [step for step in steps if step.status == "ok" and step.notebook in FIXED_NOTEBOOKS]
    planned = sum(budget.NOTEBOOK_SECONDS[step.notebook] for step in done)
    return sum(step.seconds for step in done) / planned if done else 1.0


def _plan_again(plan: plans.Plan, steps: list[Step], step: Step, out: Path, elapsed: float):
    """Before a model's notebook 03, the plan again for the models not trained yet, from the
    seconds left and the machine's speed now; saved where the notebook reads it."""
    trained = {done.parameters.get("MODEL") for done in steps if done.status == "ok"}
    speed = costs.speed_probe() / plan.probe_seconds if plan.probe_seconds else 1.0
    left = 60 * plan.budget_minutes - elapsed
    plan = budget.replan(plan, trained, left, _limited(speed), _limited(_fixed_factor(steps)))
    plans.save_plan(plan, out)
    model = plan.models[step.parameters["MODEL"]]
    print(
        f"  {plan.note}: {model.model} trains {model.epochs} epoch"
        f"{'s' if model.epochs != 1 else ''} on {model.fraction:.0%} of the split, "
        f"{model.seconds / 60:.1f} min",
        flush=True,
    )
    return plan


def _run_steps(steps, parameters, out, notebook_folder, progress, plan, start) -> None:
    """Execute the steps in order; with a plan, each model's notebook 03 after planning again."""
    for number, step in enumerate(steps, 1):
        print(f"[{number}/{len(steps)}] {step.title} ...", flush=True)
        if plan is not None and step.notebook == "03_training.ipynb":
            plan = _plan_again(plan, steps, step, out, time.perf_counter() - start)
        if plan is not None:
            step.planned_seconds = plan.notebook_seconds.get(step.output)
        execute(step, parameters, out, notebook_folder, progress)
        print(f"[{number}/{len(steps)}] {step.title} done in {step.seconds:.0f} s", flush=True)


def _training_parameters(steps: list[Step], budget_minutes: float | None, epochs) -> None:
    """Tell each notebook 03 its budget (0: fixed epochs; else it reads the saved plan)."""
    for step in steps:
        if step.notebook == "03_training.ipynb":
            step.parameters = {**step.parameters, "BUDGET_MINUTES": budget_minutes or 0}
            if epochs is not None:
                step.parameters["EPOCHS"] = epochs


def _parameters(profile, source, root, verify, seed, out) -> dict:
    """What every notebook is given. The notebooks resolve the same data again: the same
    files, or the same synthetic folder (and no second download attempt after a fallback)."""
    return {
        "PROFILE": profile,
        "DATA": source.kind,
        "ROOT": None if root is None else str(Path(root).resolve()),
        "VERIFY": verify,
        "SEED": seed,
        "RUN_DIR": str(out),
    }


def run_series(
    profile: str = "auto",
    data: str = "auto",
    root=None,
    verify: bool = True,
    out="runs/latest",
    seed: int = 0,
    steps: list[Step] | None = None,
    notebook_folder: str | os.PathLike | None = None,
    progress: bool | None = None,
    budget_minutes: float | None = None,
    epochs: int | None = None,
) -> Path:
    """Execute the series into ``out``; return the path of ``summary.md``.

    ``budget_minutes`` plans the series into that many minutes on this machine (None: the
    profile's budget, where it has one); ``epochs`` trains every model that many epochs
    instead, with no budget. Raises ``NotebookFailed`` (after writing the summary) when a
    notebook fails.
    """
    if budget_minutes is not None and epochs is not None:
        raise ValueError("Give a time budget or a number of epochs, not both.")
    profile = profiles.resolve_profile(profile)
    steps = series() if steps is None else steps
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Resolve the data once, before any notebook: a missing or refused copy fails here, clearly.
    source = profiles.open_data(profile, data, root, verify, seed)
    print(source.describe())
    parameters = _parameters(profile, source, root, verify, seed, out)
    started, start = datetime.now(UTC), time.perf_counter()
    if epochs is None:
        budget_minutes = budget.resolve_budget(profile, budget_minutes, source.is_synthetic)
    plan = _first_plan(profile, source, budget_minutes, epochs, seed, out)
    _training_parameters(steps, budget_minutes, epochs)
    folder = Path(notebook_folder or NOTEBOOK_FOLDER).resolve()
    progress = runtime.progress_enabled(progress) and sys.stderr.isatty()
    # The notebooks' own LABUTILS_PROFILE agrees with the PROFILE they are given. Progress bars
    # inside the kernels would only fill the executed notebooks.
    with _environment(LABUTILS_PROFILE=profile, LABUTILS_PROGRESS="0"):
        try:
            _run_steps(steps, parameters, out, folder, progress, plan, start)
        finally:
            seconds = time.perf_counter() - start
            summary = write_summary(out, steps, profile, source, started, seconds, plan)
    collapse = collapse_line(out)  # once, at the end: the notebooks printed it as it happened
    if collapse:
        print(collapse)
    print(f"Finished in {(time.perf_counter() - start) / 60:.1f} min. Summary: {summary}")
    return summary
