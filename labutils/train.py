"""Training and evaluation: the one-cycle loop, an lr range test, the cost of a run.

Plain functions, in the style of torchvision's classification references. ``fit_one_cycle``
trains with Leslie Smith's one-cycle policy and measures the TEST set after every epoch. Given
``out_dir`` it saves a checkpoint (``checkpoints``) after every epoch and on Ctrl-C, and
``resume=True`` continues an interrupted run to the same weights an uninterrupted run reaches.
Under torchrun the same loop trains data-parallel (``distributed``): each rank trains on its
share of every global batch, the sums are added over the ranks, and rank 0 alone writes files.
``measure_epoch_seconds`` times a few steps to say what a run will cost before it starts.
The module is over 300 lines because exact resume depends on every detail of the loop (which
batch, which random state, when the counters move): the loop stays whole, in one file.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from labutils import runtime
from labutils.checks import ParameterError, check_choice, check_int, check_positive
from labutils.engine import checkpoints, distributed
from labutils.engine.checkpoints import CHECKPOINT_FILE, HISTORY_FILE, Progress

HISTORY_KEYS = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "images_per_second",
)
CLIP_MODES = ("value", "norm")
RANGE_TEST_SMOOTHING = 0.98  # weight of the past in the range test's smoothed loss (fastai's)
RANGE_TEST_BLOWUP = 4.0  # the range test stops once the smoothed loss exceeds 4x its best
# Divergence is not always a NaN: the report's MLP fell from 43% to 14% with finite losses.
COLLAPSE_DROP = 0.15  # warn when test accuracy falls this far below its best so far


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, so the weights can no longer be trusted."""


# --------------------------------------------------------------------------- evaluation


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _to_device(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def evaluate(
    model: nn.Module,
    loader,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean cross-entropy loss and accuracy (in [0, 1]) of ``model`` over one pass of ``loader``.

    Under data-parallel training the sums are added over the ranks, so that every rank gets
    the scores of the whole test set from its share of it.
    """
    device = _model_device(model) if device is None else torch.device(device)
    channels_last = runtime.use_channels_last(model, device)
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=device)  # loss sum, correct, count (float32: MPS has no fp64)
    try:
        with torch.inference_mode(), runtime.autocast(device, dtype):
            for images, labels in loader:
                images, labels = _to_device(images, labels, device, channels_last)
                logits = model(images).float()
                totals[0] += F.cross_entropy(logits, labels, reduction="sum")
                totals[1] += (logits.argmax(dim=1) == labels).sum()
                totals[2] += len(labels)
    finally:
        model.train(was_training)
    loss_sum, correct, count = distributed.sum_over_ranks(totals).tolist()
    if count == 0:
        raise ValueError("evaluate() got no batches: the loader is empty.")
    return {"loss": loss_sum / count, "accuracy": correct / count}


# --------------------------------------------------------------------------- run and progress


@dataclass
class _Run:
    """What stays fixed while training: the model, its data and how each step is taken."""

    model: nn.Module
    train_loader: Any
    test_loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool
    grad_clip: float | None
    clip_mode: str
    epochs: int
    show_progress: bool
    out_dir: Path | None
    meta: dict
    network: nn.Module | None = None  # what the batches go through: the model, or DDP around it


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C back for a few lines, so weights, optimizer and counters always agree."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, None)
    elif received and previous != signal.SIG_IGN:
        raise KeyboardInterrupt


# --------------------------------------------------------------------------- argument checks


def _check_numbers(epochs, max_lr, weight_decay, grad_clip, clip_mode) -> None:
    check_int("epochs", epochs, minimum=1)
    check_positive("max_lr", max_lr)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    check_positive("grad_clip", grad_clip, allow_none=True)  # None: no clipping
    check_choice("clip_mode", clip_mode, CLIP_MODES)


def _check_loader(loader, name: str) -> None:
    try:
        size = len(loader)
    except TypeError:
        raise ValueError(
            f"{name} must have a length (len({name}) failed for "
            f"{type(loader).__name__}); pass a DataLoader or a TensorLoader."
        ) from None
    if size == 0:
        raise ValueError(f"{name} is empty (0 batches): check the dataset and the batch size.")


def _check_out_dir(out_dir, resume: bool) -> Path | None:
    if out_dir is None:
        if resume:
            raise ValueError("resume=True needs out_dir: the folder holding the checkpoint.")
        return None
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"out_dir {str(path)!r} cannot be created or written to ({error}); "
            f"choose another folder."
        ) from None
    return path


# --------------------------------------------------------------------------- checkpoints


def _save(run: _Run, state: Progress) -> None:
    checkpoints.save_checkpoint(
        run.out_dir, run.model, run.optimizer, run.scheduler, state, run.meta
    )


def _resume(run: _Run) -> Progress:
    state = checkpoints.resume(
        run.out_dir, run.model, run.optimizer, run.scheduler, run.meta, run.device
    )
    distributed.print_main(
        f"Resuming from {run.out_dir / CHECKPOINT_FILE}: {state.epoch} of {run.epochs} epochs "
        f"done, {state.step} of {len(run.train_loader)} batches into the next."
    )
    return state


# --------------------------------------------------------------------------- one epoch


def _clip_gradients(run: _Run) -> None:
    if run.grad_clip is None:
        return
    if run.clip_mode == "value":
        nn.utils.clip_grad_value_(run.model.parameters(), run.grad_clip)
    else:
        nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)


def _diverged_message(run: _Run, state: Progress, loss: float) -> str:
    saved = ""
    if run.out_dir is not None and state.epoch > 0:
        saved = (
            f" The checkpoint of epoch {state.epoch} in {str(run.out_dir)!r} was kept as it was."
        )
    lr = run.optimizer.param_groups[0]["lr"]
    return (
        f"training diverged at epoch {state.epoch + 1}, step {state.step + 1} of "
        f"{len(run.train_loader)}: the loss is {loss} (lr {lr:.3g}). The learning rate is "
        f"probably too high for this model (max_lr={run.meta['training']['max_lr']}): "
        f"try a lower max_lr "
        f"(run lr_range_test to pick one), or clip the gradients (for example "
        f"grad_clip=0.1).{saved}"
    )


def _step_totals(
    state: Progress, loss_sum: torch.Tensor, hits: torch.Tensor, count: int
) -> list[float]:
    """Loss sum, correct and images of the global batch, and how many ranks saw a NaN or
    Ctrl-C: one sync, one all-reduce, so that every rank takes the same decision."""
    if distributed.nan_injected(state.epoch):
        loss_sum = loss_sum * float("nan")
    flags = torch.tensor([float(count), float(distributed.interrupt_received())])
    totals = torch.cat(
        [
            torch.stack([loss_sum.detach(), hits.float(), (~torch.isfinite(loss_sum)).float()]),
            flags.to(loss_sum.device),
        ]
    )
    return distributed.sum_over_ranks(totals).tolist()


def _train_step(run: _Run, state: Progress, images: torch.Tensor, labels: torch.Tensor) -> None:
    images, labels = _to_device(images, labels, run.device, run.channels_last)
    with runtime.autocast(run.device, run.dtype):
        logits = run.network(images)
    loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
    hits = (logits.argmax(dim=1) == labels).sum()
    loss_total, correct, bad_ranks, count, interrupted = _step_totals(
        state, loss_sum, hits, len(labels)
    )
    if bad_ranks or not math.isfinite(loss_total):
        raise TrainingDiverged(_diverged_message(run, state, loss_total / count))
    if interrupted:
        raise KeyboardInterrupt  # Ctrl-C on some rank: every rank stops before this step
    # This rank's part of the global batch's mean loss; DDP then averages over the ranks.
    loss = loss_sum / count * distributed.world_size()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    _clip_gradients(run)
    with _interrupts_deferred():
        state.last_lr = run.optimizer.param_groups[0]["lr"]  # the lr this batch trained with
        run.optimizer.step()
        run.scheduler.step()
        state.step += 1
        state.loss_sum += loss_total
        state.correct += int(correct)
        state.seen += int(count)
        state.rng_state = checkpoints.rng_state(run.device)


def _progress_bar(run: _Run, state: Progress) -> tqdm:
    return tqdm(
        total=len(run.train_loader),
        initial=state.step,
        unit="batch",
        leave=False,
        desc=f"epoch {state.epoch + 1}/{run.epochs}",
        disable=not run.show_progress,
    )


def _train_epoch(run: _Run, state: Progress) -> None:
    """Train on the rest of the epoch under way: all of it, unless resuming mid-epoch."""
    if state.step == 0:
        state.epoch_rng_state = state.rng_state = checkpoints.rng_state(run.device)
    if hasattr(run.train_loader, "set_epoch"):
        run.train_loader.set_epoch(state.epoch)
    run.model.train()
    batches = iter(run.train_loader)
    if state.step:
        # Resuming: draw and discard the batches already trained on (checkpoints.resume put
        # back the random state the epoch began with), so the data order and augmentations
        # that follow are the ones an uninterrupted run would see.
        for _ in range(state.step):
            next(batches)
        checkpoints.set_rng_state(state.rng_state, run.device)
    with _progress_bar(run, state) as bar:
        clock = time.perf_counter()
        for images, labels in batches:
            _train_step(run, state, images, labels)
            now = time.perf_counter()
            state.train_seconds, clock = state.train_seconds + now - clock, now
            bar.update()
            bar.set_postfix(
                loss=f"{state.loss_sum / state.seen:.4f}",
                acc=f"{state.correct / state.seen:.4f}",
                refresh=False,
            )
    if state.seen == 0:
        raise ValueError(
            f"train_loader gave no batches, although len(train_loader) is {len(run.train_loader)}."
        )


def _end_epoch(run: _Run, state: Progress) -> None:
    """Evaluate on the test set, record and print the epoch, and save the checkpoint."""
    start = time.perf_counter()
    if distributed.describe_batch_norm(run.model) == "per-rank":
        distributed.average_buffers(run.model)  # every rank evaluates and saves the same model
    scores = evaluate(run.model, run.test_loader, run.device, run.dtype)
    seconds = state.train_seconds + time.perf_counter() - start
    record = {
        "epoch": state.epoch + 1,
        "lr": float(state.last_lr),
        "train_loss": state.loss_sum / state.seen,
        "train_acc": state.correct / state.seen,
        "test_loss": scores["loss"],
        "test_acc": scores["accuracy"],
        "seconds": seconds,
        "images_per_second": state.seen / max(state.train_seconds, 1e-9),
    }
    with _interrupts_deferred():
        state.history.append(record)
        state.start_next_epoch()
        state.rng_state = checkpoints.rng_state(run.device)
    distributed.print_main(
        f"epoch {record['epoch']}/{run.epochs}  lr {record['lr']:.3g}  "
        f"train_loss {record['train_loss']:.4f}  train_acc {record['train_acc']:.4f}  "
        f"test_loss {record['test_loss']:.4f}  test_acc {record['test_acc']:.4f}  "
        f"{record['seconds']:.1f}s"
    )
    warning = collapse_warning(state.history)
    if warning:
        distributed.print_main(warning)
    if run.out_dir is not None and distributed.is_main():
        _save(run, state)


def collapse_warning(history: list[dict], drop: float = COLLAPSE_DROP) -> str | None:
    """A warning when the last epoch's test accuracy fell far below the best so far, else None."""
    best = max(history, key=lambda record: record["test_acc"])
    last = history[-1]
    if best["test_acc"] - last["test_acc"] < drop:
        return None
    return (
        f"warning: test accuracy fell from {best['test_acc']:.1%} (epoch {best['epoch']}) "
        f"to {last['test_acc']:.1%} (epoch {last['epoch']}), at lr {last['lr']:.3g}: "
        f"training is diverging without a NaN. Lower max_lr (lr_range_test suggests one) "
        f"or clip the gradients."
    )


def _save_on_interrupt(run: _Run, state: Progress) -> None:
    if not distributed.is_main():
        return  # rank 0 saves once for all; the others just stop
    with _interrupts_deferred():  # a second Ctrl-C (torchrun forwards one) waits for the save
        _report_interrupt(run, state)


def _report_interrupt(run: _Run, state: Progress) -> None:
    where = (
        f"epoch {state.epoch + 1} of {run.epochs}, after {state.step} of "
        f"{len(run.train_loader)} batches"
    )
    if run.out_dir is None:
        print(
            f"\nInterrupted at {where}. Nothing was saved: pass out_dir=... to keep checkpoints.",
            flush=True,
        )
        return
    _save(run, state)
    print(
        f"\nInterrupted at {where}. Saved the checkpoint to "
        f"{str(run.out_dir / CHECKPOINT_FILE)!r} and the history so far to "
        f"{str(run.out_dir / HISTORY_FILE)!r}. To continue exactly from here, call "
        f"fit_one_cycle again with the same arguments and resume=True (on the command "
        f"line: the same command with --resume).",
        flush=True,
    )


# --------------------------------------------------------------------------- fit_one_cycle


def _make_run(
    model,
    train_loader,
    test_loader,
    epochs,
    max_lr,
    weight_decay,
    grad_clip,
    clip_mode,
    opt_func,
    device,
    dtype,
    out_dir,
    progress,
    meta,
    compile_model=False,
) -> _Run:
    channels_last = runtime.use_channels_last(model, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model.to(device, memory_format=memory_format)
    network = distributed.wrap_model(model, device)
    model = getattr(network, "module", network)  # DDP holds the model; save and test that
    if compile_model:  # the training steps only: testing and saving use the model itself
        network = torch.compile(network)
    optimizer = opt_func(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr, epochs=epochs, steps_per_epoch=len(train_loader)
    )
    training = {
        "epochs": int(epochs),
        "max_lr": float(max_lr),
        "weight_decay": float(weight_decay),
        "grad_clip": None if grad_clip is None else float(grad_clip),
        "clip_mode": clip_mode,
        "optimizer": getattr(opt_func, "__name__", str(opt_func)),
        "steps_per_epoch": len(train_loader),
        # What this run trains with, for its run.json (resuming may change them).
        "device": str(device),
        "precision": "fp32" if dtype is None else "bf16",
        "memory_format": "channels_last" if channels_last else "contiguous",
        "runtime": runtime.describe_runtime(device, dtype, channels_last),
        "compiled": bool(compile_model),
        **distributed.training_record(model),
    }
    return _Run(
        model,
        train_loader,
        test_loader,
        optimizer,
        scheduler,
        device,
        dtype,
        channels_last,
        None if grad_clip is None else float(grad_clip),
        clip_mode,
        int(epochs),
        runtime.progress_enabled(progress) and distributed.is_main(),
        out_dir,
        {**copy.deepcopy(meta or {}), "training": training},
        network,
    )


def fit_one_cycle(
    model: nn.Module,
    train_loader,
    test_loader,
    epochs: int,
    max_lr: float,
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    clip_mode: str = "value",
    opt_func: Callable = torch.optim.Adam,
    device: str | torch.device | None = None,
    precision: str = "auto",
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    meta: dict | None = None,
    on_epoch_end: Callable[[list[dict]], Any] | None = None,
    compile_model: bool = False,
) -> list[dict]:
    """Train with the one-cycle learning-rate policy, test after every epoch; return the history.

    The learning rate rises from max_lr/25 to ``max_lr`` over the first 30% of the batches,
    then falls to max_lr/250000. Gradients are clipped after each backward pass when
    ``grad_clip`` is given: each value to [-grad_clip, grad_clip] (``clip_mode="value"``) or
    their overall norm to ``grad_clip`` (``"norm"``). Each history record holds the epoch,
    the lr of its last batch, the running training loss and accuracy, the test loss and
    accuracy, the epoch's seconds and training images per second. ``meta`` (plain values,
    for example ``{"model_name": "cnn", "model_kwargs": {}}``) is stored in the checkpoint so that
    ``checkpoints.load_trained_model`` can rebuild the model; next to it, ``meta["training"]``
    records these arguments and the device, precision and memory format the run used.
    ``on_epoch_end``, if given, is called after every epoch with the history so far (for
    example ``plots.LiveHistoryPlot``, which redraws the curves in a notebook).
    ``compile_model=True`` trains through ``torch.compile`` (inductor): its first step waits
    for the compiler (a minute or more on a laptop), the others may be faster.
    """
    _check_numbers(epochs, max_lr, weight_decay, grad_clip, clip_mode)
    _check_loader(train_loader, "train_loader")
    _check_loader(test_loader, "test_loader")
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict or None, got {type(meta).__name__}.")
    checkpoints.check_plain(meta or {}, "meta")
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    out_dir = _check_out_dir(out_dir, resume)
    distributed.shard_loader(train_loader, "train_loader")
    distributed.shard_loader(test_loader, "test_loader")
    run = _make_run(
        model,
        train_loader,
        test_loader,
        epochs,
        max_lr,
        weight_decay,
        grad_clip,
        clip_mode,
        opt_func,
        device,
        dtype,
        out_dir,
        progress,
        meta,
        compile_model,
    )
    state = _resume(run) if resume else Progress(rng_state=checkpoints.rng_state(run.device))
    distributed.print_main(run.meta["training"]["runtime"])
    if run.meta["training"]["distributed"]:
        distributed.print_main(run.meta["training"]["distributed"])
    try:
        with distributed.interrupts_decided_together():
            while state.epoch < run.epochs:
                _train_epoch(run, state)
                _end_epoch(run, state)
                if on_epoch_end is not None:
                    on_epoch_end(list(state.history))
    except KeyboardInterrupt:
        _save_on_interrupt(run, state)
        raise
    return state.history


# --------------------------------------------------------------------------- cost


def _forever(loader):
    """Batches from ``loader`` without end: a new pass whenever one ends."""
    while True:
        yield from loader


def _timed_steps(model, batches, optimizer, device, dtype, channels_last, steps) -> float:
    """Seconds for ``steps`` training steps (data, forward, backward, update), GPU work included."""
    runtime.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        images, labels = _to_device(*next(batches), device, channels_last)
        with runtime.autocast(device, dtype):
            logits = model(images)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
    runtime.synchronize(device)
    return time.perf_counter() - start


def _time_training_steps(model, loader, steps, device, precision, compile_model):
    """(seconds of the first step, mean seconds of the ``steps`` after it) for a copy of
    ``model`` trained with Adam on ``loader``; the model, the loader's epoch and the random
    state are left as they were."""
    check_int("steps", steps, minimum=1)
    _check_loader(loader, "loader")
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    channels_last = runtime.use_channels_last(model, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    trial = copy.deepcopy(model).to(device, memory_format=memory_format).train()
    optimizer = torch.optim.Adam(trial.parameters())
    network = torch.compile(trial) if compile_model else trial
    loader_epoch = getattr(loader, "epoch", None)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        batches = _forever(loader)
        first = _timed_steps(network, batches, optimizer, device, dtype, channels_last, 1)
        seconds = _timed_steps(network, batches, optimizer, device, dtype, channels_last, steps)
    if loader_epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(loader_epoch)
    return first, seconds / steps


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
    _, step = _time_training_steps(model, loader, steps, device, precision, False)
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
    first, step = _time_training_steps(model, loader, steps, device, precision, True)
    return max(0.0, first - step), step * len(loader)


def measure_evaluation_seconds(
    model: nn.Module,
    loader,
    batches: int = 2,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> float:
    """Seconds one pass of ``evaluate`` over ``loader`` takes, timed on a few batches.

    One untimed warm-up batch, then ``batches`` timed ones, scaled to ``len(loader)``.
    """
    check_int("batches", batches, minimum=1)
    _check_loader(loader, "loader")
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    channels_last = runtime.use_channels_last(model, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    trial = copy.deepcopy(model).to(device, memory_format=memory_format).eval()
    batch_iterator = _forever(loader)
    with torch.inference_mode(), runtime.autocast(device, dtype):
        for step in range(batches + 1):
            if step == 1:  # the first batch warms up
                runtime.synchronize(device)
                start = time.perf_counter()
            images, labels = _to_device(*next(batch_iterator), device, channels_last)
            trial(images).float().argmax(dim=1)
    runtime.synchronize(device)
    return (time.perf_counter() - start) / batches * len(loader)


def describe_cost(epochs: int, epoch_seconds: float, runs: int = 1) -> str:
    """What training will take, in words.

    For example ``"2 runs x 20 epochs x 95.0 s = about 63 min on this machine"``.
    """
    times = f"{runs} runs x " if runs != 1 else ""
    return (
        f"{times}{epochs} epoch{'s' if epochs != 1 else ''} x {epoch_seconds:.1f} s = about "
        f"{runtime.format_duration(runs * epochs * epoch_seconds)} on this machine"
    )


# --------------------------------------------------------------------------- lr range test


def _sweep_learning_rates(
    model, loader, optimizer, start_lr, end_lr, num_steps, device, dtype
) -> tuple[list[float], list[float]]:
    channels_last = runtime.use_channels_last(model, device)
    factor = (end_lr / start_lr) ** (1 / (num_steps - 1))
    lrs, losses, average, best = [], [], 0.0, math.inf
    for step, (images, labels) in zip(range(num_steps), _forever(loader), strict=False):
        lr = start_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = _to_device(images, labels, device, channels_last)
        with runtime.autocast(device, dtype):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        value = loss.item()
        average = RANGE_TEST_SMOOTHING * average + (1 - RANGE_TEST_SMOOTHING) * value
        smoothed = average / (1 - RANGE_TEST_SMOOTHING ** (step + 1))  # undo the start-up bias
        if not math.isfinite(smoothed) or smoothed > RANGE_TEST_BLOWUP * best:
            break
        best = min(best, smoothed)
        lrs.append(lr)
        losses.append(smoothed)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return lrs, losses


def _check_range_arguments(train_loader, start_lr, end_lr, num_steps) -> None:
    check_positive("start_lr", start_lr)
    check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ParameterError(
            f"end_lr = {end_lr!r} is not valid: use a finite number > start_lr ({start_lr!r})."
        )
    check_int("num_steps", num_steps, minimum=2)
    _check_loader(train_loader, "train_loader")


def lr_range_test(
    model: nn.Module,
    train_loader,
    start_lr: float = 1e-7,
    end_lr: float = 1.0,
    num_steps: int = 100,
    opt_func: Callable = torch.optim.Adam,
    weight_decay: float = 0.0,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> dict:
    """Leslie Smith's learning-rate range test: raise the lr step by step and watch the loss.

    The lr grows exponentially from ``start_lr`` to ``end_lr`` over ``num_steps`` batches; the
    loss is smoothed (exponential average) and the test stops early once it exceeds 4x its
    best. The model's weights are restored afterwards (it stays on ``device``).
    ``suggested_lr`` is a tenth of the lr at the lowest smoothed loss (fastai's rule of
    thumb: the minimum itself is already on the edge of divergence), never below ``start_lr``.
    Returns ``{"lrs": [...], "losses": [...], "suggested_lr": float}``.
    """
    _check_range_arguments(train_loader, start_lr, end_lr, num_steps)
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    memory_format = (
        torch.channels_last if runtime.use_channels_last(model, device) else torch.preserve_format
    )
    model.to(device, memory_format=memory_format)
    saved_weights, was_training = copy.deepcopy(model.state_dict()), model.training
    optimizer = opt_func(model.parameters(), lr=start_lr, weight_decay=weight_decay)
    model.train()
    try:
        lrs, losses = _sweep_learning_rates(
            model, train_loader, optimizer, start_lr, end_lr, num_steps, device, dtype
        )
    finally:
        model.load_state_dict(saved_weights)
        model.train(was_training)
    if not losses:
        return {"lrs": [], "losses": [], "suggested_lr": float(start_lr)}
    best_lr = lrs[losses.index(min(losses))]
    return {"lrs": lrs, "losses": losses, "suggested_lr": max(best_lr / 10, lrs[0])}
