"""airbench94's recipe run end to end: a fast network and training tricks that reach 94% on
CIFAR-10 in ~10 epochs.

After Keller Jordan's airbench (github.com/KellerJordan/cifar10-airbench), rewritten for the lab
and for CPUs. Each trick is a small named function, in the module named for what it holds:

- ``batches``: the data stays one uint8 tensor; flips and translations are done a whole batch
  at a time; alternating flip: every image is seen mirrored every other epoch, instead of at
  random; test-time augmentation: the prediction averages mirrored and shifted views of each image
- ``network``: a whitening first layer, set (not learned) from the covariance of 2x2 patches of
  the data; a small network with shift-only batch norm, identity-initialised convolutions, GELU
- ``optimizers``: Nesterov SGD with a warm-up/warm-down schedule and a 64x larger lr for
  batch-norm biases; lookahead: the weights are pulled back towards a slow average of themselves
  every 5 steps; Muon (airbench94_muon, the faster published recipe): each conv filter's update
  is orthogonalised, so every direction learns at the same pace; 94% in 8 epochs instead of 9.9
- ``recipes``: ``Recipe`` switches tricks off, which notebook 05 uses to add them one at a time;
  ``RECIPES`` names the two published recipes and the lab's CPU variant
- here: label smoothing 0.2 in the training step; bf16 autocast and channels_last where the
  hardware runs them fast (``labutils.runtime``)

``run_speedrun(source)`` runs the whole recipe once and returns its accuracy and seconds;
``seconds_per_recipe_step`` says what a step costs on this machine before a run starts
(``engine.timing.describe_cost`` puts it in words). ``python -m labutils speedrun`` runs the
recipe for several seeds.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labutils import runtime, sources
from labutils.checks import check_choice, check_int, check_positive
from labutils.data import CLASSES
from labutils.engine import timing
from labutils.speedrun.batches import (
    TTA_LEVELS,
    SpeedData,
    load_data,
    to_network_input,
    train_batches,
    tta_accuracy,
)
from labutils.speedrun.network import (
    WHITEN_IMAGES,
    build_speed_net,
    init_whitening,
)
from labutils.speedrun.optimizers import (
    LOOKAHEAD_EVERY,
    WHITEN_BIAS_EPOCHS,
    Lookahead,
    lookahead_decay,
    make_optimizer,
)
from labutils.speedrun.recipes import (
    OPTIMIZERS,
    Recipe,
)

# --------------------------------------------------------------------------- training


def train_step(
    model: nn.Module,
    optimizer,
    images: Tensor,
    labels: Tensor,
    label_smoothing: float,
    dtype: torch.dtype | None,
) -> tuple[Tensor, Tensor]:
    """One optimiser step on one batch; returns its summed loss and correct count (tensors)."""
    with runtime.autocast(images.device, dtype):
        logits = model(images)
    # Label smoothing: the network is not pushed towards infinite confidence on any image.
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach() * len(labels), (logits.argmax(dim=1) == labels).sum()


def train_speed_net(
    model: nn.Module,
    data: SpeedData,
    recipe: Recipe,
    epochs: float,
    batch_size: int,
    seed: int,
    dtype: torch.dtype | None,
    progress: bool | None = None,
) -> list[dict]:
    """Train for ceil(epochs x steps per epoch) steps; return one record per (partial) epoch."""
    device = data.train_images.device
    steps_per_epoch = len(data.train_labels) // batch_size
    total_steps = math.ceil(steps_per_epoch * epochs)
    optimizer, scheduler = make_optimizer(recipe, model, batch_size, total_steps, steps_per_epoch)
    lookahead = Lookahead(model) if recipe.lookahead else None
    generator = torch.Generator(device=device).manual_seed(seed)
    first_flips = torch.rand(len(data.train_labels), generator=generator, device=device) < 0.5
    channels_last = runtime.use_channels_last(model, device)
    history, step = [], 0
    with runtime.progress_bar(total=total_steps, unit="step", leave=False, enabled=progress) as bar:
        for epoch in range(math.ceil(epochs)):
            if recipe.whiten:
                model.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
            model.train()
            loss_sum, correct, seen = torch.zeros((), device=device), 0, 0
            for images, labels in train_batches(
                data, batch_size, epoch, first_flips, generator, channels_last
            ):
                batch_loss, batch_correct = train_step(
                    model, optimizer, images, labels, recipe.label_smoothing, dtype
                )
                scheduler.step()
                step, seen = step + 1, seen + len(labels)
                loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
                if lookahead is not None and step % LOOKAHEAD_EVERY == 0:
                    lookahead.update(model, lookahead_decay(step, total_steps))
                bar.update()
                if step == total_steps:
                    break
            history.append(_epoch_record(epoch, step, loss_sum, correct, seen))
    if lookahead is not None:
        lookahead.update(model, 1.0)  # end on the slow weights
    return history


def _epoch_record(epoch: int, step: int, loss_sum: Tensor, correct, seen: int) -> dict:
    return {
        "epoch": epoch + 1,
        "steps": step,
        "train_loss": loss_sum.item() / seen,
        "train_acc": float(correct) / seen,
    }


def _check_run(epochs, batch_size, tta_level, seed, recipe: Recipe, train_count: int) -> None:
    check_positive("epochs", epochs)
    check_int("batch_size", batch_size, minimum=1)
    check_choice("tta_level", tta_level, TTA_LEVELS)
    check_int("seed", seed, minimum=0)
    check_choice("recipe.optimizer", recipe.optimizer, OPTIMIZERS)
    check_positive("recipe.label_smoothing", recipe.label_smoothing, allow_zero=True)
    if batch_size > train_count:
        raise ValueError(
            f"batch_size = {batch_size} is larger than the {train_count} training "
            f"images, so an epoch has no full batch: use a smaller batch size."
        )


def run_speedrun(
    source: sources.DataSource | SpeedData,
    epochs: float | None = None,
    batch_size: int | None = None,
    tta_level: int = 2,
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    progress: bool | None = None,
    recipe: Recipe | None = None,
) -> dict:
    """Train airbench94's network with ``recipe`` (airbench94's by default; its epochs and batch
    size unless given) and test it. ``seconds`` counts the whitening, the training and the final
    (TTA) evaluation, not reading the files or building the network. Pass ``load_data(source)``
    to read the files once for several runs. The result holds plain numbers, the per-epoch
    ``history`` and, under ``"model"``, the trained network."""
    recipe = recipe or Recipe()
    epochs = recipe.epochs if epochs is None else epochs
    batch_size = recipe.batch_size if batch_size is None else batch_size
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    data = (source if isinstance(source, SpeedData) else load_data(source)).to(device)
    _check_run(epochs, batch_size, tta_level, seed, recipe, len(data.train_labels))
    runtime.seed_everything(seed)
    model = build_speed_net(device, recipe)
    start = timing.clock(device)
    if recipe.whiten:
        init_whitening(model.whiten, to_network_input(data.train_images[:WHITEN_IMAGES], False))
    whitened = timing.clock(device)
    history = train_speed_net(model, data, recipe, epochs, batch_size, seed, dtype, progress)
    trained = timing.clock(device)
    test_acc = tta_accuracy(model, data.test_images, data.test_labels, tta_level, dtype)
    tested = timing.clock(device)
    test_acc_no_tta = test_acc  # the same pass without test-time augmentation
    if tta_level:
        test_acc_no_tta = tta_accuracy(model, data.test_images, data.test_labels, 0, dtype)
    return {
        "test_acc": test_acc,
        "test_acc_no_tta": test_acc_no_tta,
        **_phase_seconds(start, whitened, trained, tested),
        **_run_record(epochs, batch_size, tta_level, seed, recipe),
        "steps": history[-1]["steps"],
        "data": data.label,
        "runtime": runtime.describe_runtime(
            device, dtype, runtime.use_channels_last(model, device)
        ),
        "history": history,
        "model": model,
    }


def _phase_seconds(start: float, whitened: float, trained: float, tested: float) -> dict:
    return {
        "seconds": tested - start,
        "seconds_whiten": whitened - start,
        "seconds_train": trained - whitened,
        "seconds_tta": tested - trained,
    }


def _run_record(epochs, batch_size, tta_level, seed, recipe: Recipe) -> dict:
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "tta_level": tta_level,
        "seed": seed,
        "recipe": asdict(recipe),
    }


# --------------------------------------------------------------------------- cost estimates


def seconds_per_step(
    model: nn.Module,
    batch_size: int,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
    optimizer=None,
    calls: int = 1,
) -> float:
    """Seconds one training step of ``model`` takes on ``device``: the mean of ``calls`` steps
    on a random batch, after one untimed warm-up step.

    The steps change the weights: time a throwaway network. ``optimizer`` defaults to Adam.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("calls", calls, minimum=1)
    device = torch.device(device)
    channels_last = runtime.use_channels_last(model, device)
    model = model.to(device, memory_format=runtime.memory_format(model, device)).train()
    optimizer = optimizer or torch.optim.Adam(model.parameters())
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(
        0, 256, (batch_size, 32, 32, 3), dtype=torch.uint8, generator=generator, device=device
    )
    images = to_network_input(images, channels_last)
    labels = torch.randint(0, len(CLASSES), (batch_size,), generator=generator, device=device)
    _, seconds = timing.time_steps(
        lambda: train_step(model, optimizer, images, labels, 0.0, dtype), calls, device
    )
    return seconds


def seconds_per_recipe_step(
    recipe: Recipe,
    batch_size: int,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
    calls: int = 1,
) -> float:
    """``seconds_per_step`` of a fresh network of ``recipe`` with its optimiser."""
    model = build_speed_net(device, recipe)
    optimizer, _ = make_optimizer(recipe, model, batch_size, total_steps=100, steps_per_epoch=10)
    return seconds_per_step(model, batch_size, device, dtype, optimizer, calls)
