"""Training and evaluation: ``fit_one_cycle``, ``train_one_epoch``, ``evaluate``, ``lr_range_test``.

Read it from the top. ``fit_one_cycle`` builds the optimizer and the one-cycle schedule, then
alternates ``train_one_epoch`` (the loop notebook 03 asks you to write) and ``evaluate`` on the
TEST set, one epoch at a time. What the loop relies on but does not teach lives in
``labutils.engine``: ``checkpoints`` (saving after every epoch and on Ctrl-C, resuming exactly),
``distributed`` (one rank of a torchrun job: sums over the ranks), ``interrupts`` (Ctrl-C held
back while the weights change) and ``timing`` (what a run will cost before it starts).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labutils import loaders, runtime
from labutils.checks import ParameterError, check_choice, check_int, check_positive
from labutils.engine import checkpoints, distributed, interrupts
from labutils.engine.checkpoints import Progress, RunFolder

CLIP_MODES = ("value", "norm")
# Divergence is not always a NaN: the report's MLP fell from 43% to 14% with finite losses.
COLLAPSE_DROP = 0.15  # warn when test accuracy falls this far below its best so far
RANGE_TEST_SMOOTHING = 0.98  # weight of the past in the range test's smoothed loss (fastai's)
RANGE_TEST_BLOWUP = 4.0  # the range test stops once the smoothed loss exceeds 4x its best


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, so the weights can no longer be trusted."""


def fit_one_cycle(
    model: nn.Module,
    train_loader,
    test_loader,
    epochs: int,
    max_lr: float,
    *,
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
    """Train with the one-cycle policy (lr from max_lr/25 up to ``max_lr`` in the first 30% of
    the batches, then down to max_lr/250000), testing after each epoch; return the history (per
    epoch: lr, train and test loss and accuracy, seconds, images/s). ``grad_clip`` clips each
    gradient value (``clip_mode="norm"``: their norm). With ``out_dir`` a checkpoint holding
    ``meta`` is saved after each epoch and on Ctrl-C; ``resume=True`` goes on from it exactly.
    ``on_epoch_end(history)`` runs after each epoch (``plots.LiveHistoryPlot`` draws it)."""
    _check_arguments(epochs, max_lr, weight_decay, grad_clip, clip_mode, meta)
    _check_loaders(train_loader=train_loader, test_loader=test_loader)
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    folder = checkpoints.prepare_folder(out_dir, resume)
    distributed.shard_loaders(train_loader=train_loader, test_loader=test_loader)
    model.to(device, memory_format=runtime.memory_format(model, device))
    network = distributed.wrap_model(model, device)  # DDP around the model under torchrun
    model = getattr(network, "module", network)  # what is tested and saved
    network = torch.compile(network) if compile_model else network  # the training steps only
    optimizer = opt_func(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr, epochs=epochs, steps_per_epoch=len(train_loader)
    )
    training = {  # what a resumed run must repeat, and where this one runs
        **_arguments_record(epochs, max_lr, weight_decay, grad_clip, clip_mode, opt_func),
        "steps_per_epoch": len(train_loader),
        **_runtime_record(model, device, dtype, compile_model),
    }
    run = RunFolder(folder, model, optimizer, scheduler, meta, training)
    state = run.resume(device) if resume else Progress.start(device)
    distributed.print_main("\n".join(filter(None, (training["runtime"], training["distributed"]))))
    with _stopped_safely(run, state, epochs):
        while state.epoch < epochs:
            train_one_epoch(
                network, train_loader, optimizer, scheduler, grad_clip, clip_mode=clip_mode,
                device=device, dtype=dtype, progress=state, epochs=epochs, show=progress,
            )  # fmt: skip
            distributed.join_batch_norm_statistics(model)  # every rank tests one model
            state.end_epoch(evaluate(model, test_loader, device, dtype), device)
            distributed.print_main(format_epoch(state.history[-1], epochs))
            _warn_once_on_collapse(state.history)
            run.save(state)
            if on_epoch_end is not None:
                on_epoch_end(list(state.history))
    _note_collapse(state.history)
    return state.history


def train_one_epoch(
    network: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler,
    grad_clip: float | None = None,
    *,
    clip_mode: str = "value",
    device: torch.device,
    dtype: torch.dtype | None,
    progress: Progress,
    epochs: int,
    show: bool | None = None,
) -> None:
    """Train on the rest of the epoch under way (all of it unless resuming), adding to ``progress``.

    Notebook 03's ``train_one_epoch`` with four additions: bf16 autocast where the hardware
    runs it fast, sums over the ranks under torchrun, a stop on a NaN loss, and Ctrl-C held
    back while the weights and the counters change, so that a checkpoint is always whole.
    """
    network.train()
    batches = progress.remaining_batches(loader, device)
    layout = runtime.memory_format(network, device)
    with _epoch_bar(len(loader), progress, epochs, show) as bar:
        for images, labels in batches:
            images, labels = images.to(device, memory_format=layout), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            with runtime.autocast(device, dtype), distributed.own_random_stream(device):
                logits = network(images)  # under torchrun: this rank's share of the batch
            loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
            correct = (logits.argmax(dim=1) == labels).sum()
            batch = distributed.sum_batch(loss_sum, correct, len(labels))  # over the ranks
            if not math.isfinite(batch.loss_sum):
                raise TrainingDiverged(diverged_message(batch, progress, optimizer, len(loader)))
            (loss_sum / batch.images_per_rank).backward()  # the global batch's mean loss
            clip_gradients(network.parameters(), grad_clip, clip_mode)
            with interrupts.deferred():  # the weights and the counters move together
                lr = optimizer.param_groups[0]["lr"]  # the lr this batch trains with
                optimizer.step()
                scheduler.step()
                progress.add_batch(batch, lr, device)
            bar.update()
            bar.set_postfix(progress.running_scores(), refresh=False)


def evaluate(
    model: nn.Module,
    loader,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean cross-entropy loss and accuracy (in [0, 1]) of ``model`` over one pass of ``loader``.

    Under torchrun the sums are added over the ranks: every rank gets the whole test set's
    scores from its share of it.
    """
    device = _model_device(model) if device is None else torch.device(device)
    layout = runtime.memory_format(model, device)
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=device)  # loss sum, correct, count (float32: MPS has no fp64)
    try:
        with torch.inference_mode(), runtime.autocast(device, dtype):
            for images, labels in loader:
                images, labels = images.to(device, memory_format=layout), labels.to(device)
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


def clip_gradients(parameters, grad_clip: float | None, clip_mode: str = "value") -> None:
    """Clip each gradient value to [-grad_clip, grad_clip], or their norm; nothing for None."""
    if grad_clip is None:
        return
    if clip_mode == "value":
        nn.utils.clip_grad_value_(parameters, grad_clip)
    else:
        nn.utils.clip_grad_norm_(parameters, grad_clip)


# --------------------------------------------------------------------------- what a run says


def format_epoch(record: dict, epochs: int) -> str:
    """The line printed after each epoch."""
    return (
        f"epoch {record['epoch']}/{epochs}  lr {record['lr']:.3g}  "
        f"train_loss {record['train_loss']:.4f}  train_acc {record['train_acc']:.4f}  "
        f"test_loss {record['test_loss']:.4f}  test_acc {record['test_acc']:.4f}  "
        f"{record['seconds']:.1f}s"
    )


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


def diverged_message(batch, progress: Progress, optimizer, steps_per_epoch: int) -> str:
    """What went wrong when the loss stopped being a number, and what to try."""
    lr = optimizer.param_groups[0]["lr"]
    return (
        f"training diverged at epoch {progress.epoch + 1}, step {progress.step + 1} of "
        f"{steps_per_epoch}: the loss is {batch.loss_sum / batch.images} (lr {lr:.3g}). The "
        f"learning rate is probably too high for this model (max_lr="
        f"{optimizer.param_groups[0].get('max_lr', lr):.3g}): try a lower max_lr (run "
        f"lr_range_test to pick one), or clip the gradients (for example grad_clip=0.1)."
    )


def _warn_once_on_collapse(history: list[dict]) -> None:
    """Print the collapse warning at the first epoch that collapses, not at every one after."""
    earlier = any(collapse_warning(history[:end]) for end in range(1, len(history)))
    warning = collapse_warning(history)
    if warning and not earlier:
        distributed.print_main(warning)


def _note_collapse(history: list[dict]) -> None:
    """One line at the end of a run whose test accuracy collapsed on the way."""
    collapsed = [end for end in range(1, len(history) + 1) if collapse_warning(history[:end])]
    if collapsed:
        best = max(history, key=lambda record: record["test_acc"])
        distributed.print_main(
            f"note: test accuracy collapsed in this run (from epoch {collapsed[0]}); the best "
            f"was {best['test_acc']:.1%} at epoch {best['epoch']}, the last "
            f"{history[-1]['test_acc']:.1%}."
        )


# --------------------------------------------------------------------------- lr range test


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
    _check_range_arguments(start_lr, end_lr, num_steps)
    _check_loaders(train_loader=train_loader)
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    model.to(device, memory_format=runtime.memory_format(model, device))
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


def _sweep_learning_rates(
    model, loader, optimizer, start_lr, end_lr, num_steps, device, dtype
) -> tuple[list[float], list[float]]:
    layout = runtime.memory_format(model, device)
    factor = (end_lr / start_lr) ** (1 / (num_steps - 1))
    lrs, losses, average, best = [], [], 0.0, math.inf
    for step, (images, labels) in zip(range(num_steps), loaders.forever(loader), strict=False):
        lr = start_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = images.to(device, memory_format=layout), labels.to(device)
        with runtime.autocast(device, dtype):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        average = RANGE_TEST_SMOOTHING * average + (1 - RANGE_TEST_SMOOTHING) * loss.item()
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


# --------------------------------------------------------------------------- checks and records


def _check_arguments(epochs, max_lr, weight_decay, grad_clip, clip_mode, meta) -> None:
    check_int("epochs", epochs, minimum=1)
    check_positive("max_lr", max_lr)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    check_positive("grad_clip", grad_clip, allow_none=True)  # None: no clipping
    check_choice("clip_mode", clip_mode, CLIP_MODES)
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict or None, got {type(meta).__name__}.")
    checkpoints.check_plain(meta or {}, "meta")


def _check_loaders(**loaders) -> None:
    for name, loader in loaders.items():
        try:
            size = len(loader)
        except TypeError:
            raise ValueError(
                f"{name} must have a length (len({name}) failed for "
                f"{type(loader).__name__}); pass a DataLoader or a TensorLoader."
            ) from None
        if size == 0:
            raise ValueError(f"{name} is empty (0 batches): check the dataset and the batch size.")


def _check_range_arguments(start_lr, end_lr, num_steps) -> None:
    check_positive("start_lr", start_lr)
    check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ParameterError(
            f"end_lr = {end_lr!r} is not valid: use a finite number > start_lr ({start_lr!r})."
        )
    check_int("num_steps", num_steps, minimum=2)


def _arguments_record(epochs, max_lr, weight_decay, grad_clip, clip_mode, opt_func) -> dict:
    return {
        "epochs": int(epochs),
        "max_lr": float(max_lr),
        "weight_decay": float(weight_decay),
        "grad_clip": None if grad_clip is None else float(grad_clip),
        "clip_mode": clip_mode,
        "optimizer": getattr(opt_func, "__name__", str(opt_func)),
    }


def _runtime_record(model: nn.Module, device, dtype, compile_model: bool) -> dict:
    """What this run trains with, for its checkpoint and run.json (a resumed run may differ)."""
    channels_last = runtime.use_channels_last(model, device)
    return {
        "device": str(device),
        "precision": "fp32" if dtype is None else "bf16",
        "memory_format": "channels_last" if channels_last else "contiguous",
        "runtime": runtime.describe_runtime(device, dtype, channels_last),
        "compiled": bool(compile_model),
        **distributed.describe_processes(model),
    }


@contextlib.contextmanager
def _stopped_safely(run: RunFolder, progress: Progress, epochs: int):
    """Ctrl-C: every rank stops at the same step, and rank 0 saves and says how to resume. A loss
    that is not a number: the error says the last checkpoint was kept as it was."""
    try:
        with run.saved_on_interrupt(progress, epochs), interrupts.decided_together():
            yield
    except TrainingDiverged as error:
        raise TrainingDiverged(f"{error}{run.kept_checkpoint_note(progress)}") from None


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _epoch_bar(total: int, progress: Progress, epochs: int, show: bool | None):
    return runtime.progress_bar(
        total=total,
        initial=progress.step,
        unit="batch",
        leave=False,
        desc=f"epoch {progress.epoch + 1}/{epochs}",
        enabled=runtime.progress_enabled(show) and distributed.is_main(),
    )
