"""Training speed: the report's pipeline against this engine's defaults, on the same model and data.

(a) the report: ``CIFAR10`` with ``ToTensor``/``Normalize`` applied to one PIL image at a time,
    a ``DataLoader`` of batch 64, fp32, NCHW (``loaders.report_loaders``).
(b) the engine: the whole split as one uint8 tensor, normalised and augmented a batch at a time
    (``loaders.make_loaders``), with the ``cpu`` profile's batch size and augmentation, and the
    precision and memory format ``runtime`` picks for this machine.

One timed step is: fetch the next batch from the loader, forward, cross-entropy, backward,
Adam step. For each model, each repeat times (a) then (b), or (b) then (a) on every other
repeat, each after a short warm-up; the table shows the medians and their ratio. Both run in
this one process, interleaved, so a busy neighbour slows both alike.

    python benchmarks/speed.py --data cifar10 --root data --markdown
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from labutils import loaders, models, runtime, sources
from labutils.course import profiles

REPEATS = 3  # timings per pipeline and model; the table shows their median
WARMUP_STEPS = 2  # untimed steps before each timing (first-call allocations, lazy init)
# Steps per timing, sized so all three models take a few minutes on 2 cores:
# the report's pipeline trains resnet9 at about 70 images/s there.
DEFAULT_STEPS = {"mlp": 100, "cnn": 30, "resnet9": 8}
LEARNING_RATE = 1e-3  # the same Adam for both pipelines: speed does not depend on it
WEIGHT_DECAY = 1e-4
SEED = 0


@dataclass
class Pipeline:
    """One way of training a model: its loader's batches, precision and memory format."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batches: object  # an endless iterator of (images, labels)
    batch_size: int
    dtype: torch.dtype | None
    channels_last: bool

    @property
    def layout(self) -> str:
        precision = "fp32" if self.dtype is None else str(self.dtype).removeprefix("torch.")
        return (
            f"{precision.replace('bfloat16', 'bf16')}, "
            f"{'channels_last' if self.channels_last else 'NCHW'}"
        )


def endless(loader):
    """Batches from ``loader`` forever; one iterator is kept until it runs out, then a new one."""
    while True:
        yield from loader


def build_pipeline(
    name: str,
    model_name: str,
    loader,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
) -> Pipeline:
    """A fresh model (same initial weights for every pipeline) and Adam, fed by ``loader``."""
    torch.manual_seed(SEED)
    model = models.build_model(model_name)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model.to(device, memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    return Pipeline(
        name, model, optimizer, endless(loader), loader.batch_size, dtype, channels_last
    )


def report_pipeline(model_name: str, train_loader, device: torch.device) -> Pipeline:
    """(a) The report's way: per-image transforms in a DataLoader, fp32, NCHW."""
    return build_pipeline("report", model_name, train_loader, device, None, False)


def engine_pipeline(model_name: str, source: sources.DataSource, device: torch.device) -> Pipeline:
    """(b) This engine with its defaults: the tensor loader, the ``cpu`` profile's batch size."""
    settings = profiles.training_settings("cpu", model_name)
    channels_last = runtime.use_channels_last(models.build_model(model_name), device)
    train_loader, _ = loaders.make_loaders(
        source,
        settings["batch_size"],
        augment=settings["augment"],
        seed=SEED,
        device=device,
        channels_last=channels_last,
    )
    dtype = runtime.select_precision(device, "auto")
    return build_pipeline("engine", model_name, train_loader, device, dtype, channels_last)


def train_step(pipeline: Pipeline, device: torch.device) -> int:
    """Fetch one batch and train on it; return how many images it held."""
    images, labels = next(pipeline.batches)
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    if pipeline.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with runtime.autocast(device, pipeline.dtype):
        logits = pipeline.model(images)
    loss = F.cross_entropy(logits.float(), labels)
    pipeline.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    pipeline.optimizer.step()
    return len(labels)


def images_per_second(pipeline: Pipeline, steps: int, device: torch.device) -> float:
    """Train ``steps`` batches after a warm-up and return the training images per second."""
    for _ in range(WARMUP_STEPS):
        train_step(pipeline, device)
    runtime.synchronize(device)
    start = time.perf_counter()
    images = sum(train_step(pipeline, device) for _ in range(steps))
    runtime.synchronize(device)
    return images / (time.perf_counter() - start)


def measure_model(
    model_name: str,
    report_loader,
    source: sources.DataSource,
    device: torch.device,
    repeats: int,
    steps: int,
) -> dict:
    """Time both pipelines on one model, interleaved; return their median images/s."""
    pipelines = [
        report_pipeline(model_name, report_loader, device),
        engine_pipeline(model_name, source, device),
    ]
    speeds = {pipeline.name: [] for pipeline in pipelines}
    for repeat in range(repeats):
        order = pipelines if repeat % 2 == 0 else pipelines[::-1]  # neither always goes first
        for pipeline in order:
            speeds[pipeline.name].append(images_per_second(pipeline, steps, device))
        print(
            f"  {model_name} repeat {repeat + 1}/{repeats}: "
            f"report {speeds['report'][-1]:,.0f} img/s, "
            f"engine {speeds['engine'][-1]:,.0f} img/s",
            flush=True,
        )
    report, engine = (statistics.median(speeds[name]) for name in ("report", "engine"))
    return {
        "model": model_name,
        "steps": steps,
        "report_setup": f"{pipelines[0].batch_size}, {pipelines[0].layout}",
        "engine_setup": f"{pipelines[1].batch_size}, {pipelines[1].layout}",
        "report": report,
        "engine": engine,
        "ratio": engine / report,
    }


COLUMNS = (
    "model",
    "steps",
    "report: batch, precision, layout",
    "report img/s",
    "engine: batch, precision, layout",
    "engine img/s",
    "engine / report",
)
NUMBER_COLUMNS = ("steps", "report img/s", "engine img/s", "engine / report")  # right-aligned


def table_cells(row: dict) -> list[str]:
    return [
        row["model"],
        str(row["steps"]),
        row["report_setup"],
        f"{row['report']:,.0f}",
        row["engine_setup"],
        f"{row['engine']:,.0f}",
        f"{row['ratio']:.2f}x",
    ]


def format_table(rows: list[dict], markdown: bool) -> str:
    """The results as a markdown table, or as aligned plain-text columns."""
    lines = [list(COLUMNS)] + [table_cells(row) for row in rows]
    if markdown:
        rule = ["---:" if name in NUMBER_COLUMNS else "---" for name in COLUMNS]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in [lines[0], rule, *lines[1:]])
    widths = [max(len(cells[column]) for cells in lines) for column in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
        for cells in lines
    )


def machine_line(device: torch.device, source: sources.DataSource, repeats: int) -> str:
    """Where and on what the numbers were measured, to print with the table."""
    if device.type == "cpu":
        where = f"{runtime.cpu_name()}, {torch.get_num_threads()} torch threads"
    else:
        where = runtime.describe_runtime(device, None, False).split(" precision=")[0]
    return (
        f"Machine: {where}; torch {torch.__version__}; {source.label}; "
        f"median of {repeats} interleaved repeats, after {WARMUP_STEPS} warm-up steps each."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        choices=sources.SOURCES,
        default="auto",
        help="which data to train on (default: auto)",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="data folder (default: $CIFAR10_ROOT, else data/ in the repository)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="accept CIFAR-10 files whose md5 sums are not the official ones",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=models.MODEL_NAMES,
        default=list(models.MODEL_NAMES),
        help="models to time (default: all)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"timings per pipeline and model (default: {REPEATS})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per timing (default: "
        + ", ".join(f"{name} {steps}" for name, steps in DEFAULT_STEPS.items())
        + ")",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)
    for name in ("repeats", "steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a whole number >= 1, got {value}.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = sources.get_data_source(args.data, args.root, verify=not args.no_verify)
    device = runtime.select_device("auto")
    # The engine's training entry points make malloc keep freed memory; the setting is
    # process-wide, so the report's pipeline, interleaved in this process, gets it too.
    runtime.keep_freed_memory()
    print(source.describe())
    print(
        f"engine: {runtime.describe_runtime(device, runtime.select_precision(device), True)}"
        f" (channels_last for the conv nets only)",
        flush=True,
    )
    report_loader, _ = loaders.report_loaders(
        source.root, profiles.REPORT_SETTINGS["batch_size"], verify=source.verified
    )
    rows = []
    for model_name in args.models:
        steps = args.steps or DEFAULT_STEPS[model_name]
        rows.append(measure_model(model_name, report_loader, source, device, args.repeats, steps))
    print()
    print(format_table(rows, args.markdown))
    print()
    print(machine_line(device, source, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
