"""What training will cost on this machine, measured on a few steps before it starts.

A step is timed from a clock that waits for the GPU (``clock``): queued GPU work belongs to the
interval that queued it. The first step of a run pays for set-up (memory, kernels, a compiler)
and is timed apart. ``describe_cost`` says the result in words.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labutils import loaders, runtime
from labutils.checks import check_int


def clock(device: torch.device | str) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done."""
    runtime.synchronize(device)
    return time.perf_counter()


def time_steps(step: Callable[[], object], steps: int, device: torch.device) -> tuple[float, float]:
    """(seconds of the first call of ``step``, mean seconds of the ``steps`` calls after it)."""
    check_int("steps", steps, minimum=1)
    start = clock(device)
    step()
    first = clock(device)
    for _ in range(steps):
        step()
    return first - start, (clock(device) - first) / steps


def describe_cost(epochs: float, epoch_seconds: float, runs: int = 1) -> str:
    """What training will take, in words.

    For example ``"2 runs x 20 epochs x 95.0 s = about 63 min on this machine"``.
    """
    times = f"{runs} runs x " if runs != 1 else ""
    return (
        f"{times}{epochs:g} epoch{'s' if epochs != 1 else ''} x {epoch_seconds:.1f} s = about "
        f"{runtime.format_duration(runs * epochs * epoch_seconds)} on this machine"
    )


def measure_epoch_seconds(
    model: nn.Module,
    loader,
    steps: int = 3,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> float:
    """Seconds one training epoch over ``loader`` takes on this machine, timed on a few steps.

    Trains a copy of ``model`` with Adam, on the device and in the precision ``fit_one_cycle``
    would pick: one untimed warm-up step, then ``steps`` timed ones, scaled to ``len(loader)``
    batches. The test pass after each epoch is not included. The model, the loader's epoch
    and the random state are left as they were.
    """
    _, step = _time_training_steps(model, loader, steps, device, precision, compile_model=False)
    return step * len(loader)


def measure_compiled_epoch_seconds(
    model: nn.Module,
    loader,
    steps: int = 3,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> tuple[float, float]:
    """(seconds ``torch.compile`` takes before the first step, seconds of one epoch compiled),
    measured as ``measure_epoch_seconds`` measures, through ``torch.compile``."""
    first, step = _time_training_steps(model, loader, steps, device, precision, compile_model=True)
    return max(0.0, first - step), step * len(loader)


def measure_evaluation_seconds(
    model: nn.Module,
    loader,
    batches: int = 2,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> float:
    """Seconds one pass of ``train.evaluate`` over ``loader`` takes, timed on a few batches."""
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    layout = runtime.memory_format(model, device)
    trial = copy.deepcopy(model).to(device, memory_format=layout).eval()
    batch_iterator = loaders.forever(loader)

    def predict() -> None:
        images, _ = next(batch_iterator)
        with torch.inference_mode(), runtime.autocast(device, dtype):
            trial(images.to(device, memory_format=layout)).float().argmax(dim=1)

    _, seconds = time_steps(predict, batches, device)
    return seconds * len(loader)


def _time_training_steps(model, loader, steps, device, precision, compile_model):
    """(first step, mean of the ``steps`` after it) for a copy of ``model`` trained with Adam on
    ``loader``; the model, the loader's epoch and the random state are left as they were."""
    if len(loader) == 0:
        raise ValueError("loader is empty (0 batches): check the dataset and the batch size.")
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    layout = runtime.memory_format(model, device)
    trial = copy.deepcopy(model).to(device, memory_format=layout).train()
    optimizer = torch.optim.Adam(trial.parameters())
    network = torch.compile(trial) if compile_model else trial
    loader_epoch = getattr(loader, "epoch", None)
    batches = loaders.forever(loader)

    def train_step() -> None:
        images, labels = next(batches)
        images, labels = images.to(device, memory_format=layout), labels.to(device)
        with runtime.autocast(device, dtype):
            logits = network(images)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        timings = time_steps(train_step, steps, device)
    if loader_epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(loader_epoch)
    return timings
