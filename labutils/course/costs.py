"""What the series costs on this machine: each model's seconds per image, timed here.

A time budget (``labutils.course.budget``) plans from these figures. Each model trains a few
steps, in the precision the run will use, at every batch size its profile offers; where the
profile lists it as worth trying, ``torch.compile`` is timed too. ``speed_probe`` times a fixed
piece of arithmetic, so that a run can tell later how much faster or slower the machine has
become since the models were timed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import numpy as np
import torch

from labutils import loaders, models, runtime
from labutils.course import profiles
from labutils.engine import timing

TIMED_STEPS = 4  # training steps timed per model, after one untimed warm-up step
# A model whose timed steps take less is timed again on more steps (a profile may say less).
MIN_TIMED_SECONDS = 1.0
MAX_TIMED_BATCHES = 200
# torch.compile is timed (which costs a compile) only for a model planned to train at least
# this long: on 2 cores the CNN compiles in about a minute and then steps 1.4x faster.
COMPILE_TRIAL_SECONDS = 300
PROBE_IMAGES = 64  # the speed probe's batch: a tenth of a second a step on 2 cores


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
        return fraction * self.train_pass_seconds + self.test_pass_seconds

    @property
    def train_pass_seconds(self) -> float:
        return self.train_images * self.train_image_seconds

    @property
    def test_pass_seconds(self) -> float:
        return self.test_images * self.test_image_seconds

    @property
    def fp32_test_pass_seconds(self) -> float:
        return self.test_images * (self.fp32_test_image_seconds or self.test_image_seconds)

    def slowed(self, factor: float) -> ModelCost:
        """The same model on a machine ``factor`` times slower (0.5: twice as fast)."""
        return replace(
            self,
            train_image_seconds=self.train_image_seconds * factor,
            test_image_seconds=self.test_image_seconds * factor,
            fp32_test_image_seconds=(self.fp32_test_image_seconds or self.test_image_seconds)
            * factor,
            compile_seconds=self.compile_seconds * factor,
        )


def time_model(
    name: str,
    batch_size: int,
    augment: bool,
    train_split: tuple,
    test_split: tuple,
    device: torch.device,
    precision: str = "auto",
    seed: int = 0,
    min_seconds: float = MIN_TIMED_SECONDS,
) -> tuple[float, float, float]:
    """Seconds per training image, per test image, and per test image in fp32 for a fresh
    ``name`` on this machine, each timed for ``min_seconds`` at least."""
    model = models.build_model(name).to(device)
    channels_last = runtime.use_channels_last(model, device)
    common = dict(device=device, channels_last=channels_last)
    train_loader = loaders.TensorLoader(
        *train_split, batch_size, shuffle=True, augment=augment, seed=seed, **common
    )
    test_loader = loaders.TensorLoader(*test_split, max(batch_size, 500), **common)

    def timed(measure, loader, batches, precision):
        return _timed(measure, model, loader, batches, device, precision, min_seconds)

    epoch = timed(timing.measure_epoch_seconds, train_loader, TIMED_STEPS, precision)
    test = timed(timing.measure_evaluation_seconds, test_loader, 2, precision)
    fp32 = test
    if runtime.select_precision(device, precision) is not None:
        fp32 = timed(timing.measure_evaluation_seconds, test_loader, 2, "fp32")
    images = test_loader.num_images
    return epoch / (len(train_loader) * batch_size), test / images, fp32 / images


def _timed(measure, model, loader, batches: int, device, precision, min_seconds) -> float:
    """``measure``'s seconds for one pass over ``loader``, timed on ``batches`` batches, or on
    as many more as take ``min_seconds``: a few steps of a small model last milliseconds,
    and one pause of the machine in them would price the model several times too high."""
    seconds = measure(model, loader, batches, device, precision)
    batch_seconds = seconds / len(loader)
    if batch_seconds * batches >= min_seconds:
        return seconds
    more = min(MAX_TIMED_BATCHES, math.ceil(min_seconds / max(batch_seconds, 1e-6)))
    return measure(model, loader, more, device, precision)


def _fastest_batch(
    name: str, settings: dict, choices: tuple, splits: tuple, device, precision, seed, min_seconds
) -> ModelCost:
    """The model timed at each batch size offered; the fastest per training image."""
    best = None
    for batch_size in dict.fromkeys((settings["batch_size"], *choices)):
        per_train, per_test, fp32_test = time_model(
            name, batch_size, settings["augment"], *splits, device, precision, seed, min_seconds
        )
        if best is None or per_train < best.train_image_seconds:
            # Adam's usual rule: the peak learning rate grows with the square root of the batch.
            max_lr = settings["max_lr"] * math.sqrt(batch_size / settings["batch_size"])
            best = ModelCost(
                name,
                batch_size,
                float(f"{max_lr:.2g}"),
                len(splits[0][1]),
                len(splits[1][1]),
                per_train,
                per_test,
                fp32_test,
            )
    return best


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
    several batch sizes for a model (a speed choice, not a lesson), keep the fastest."""
    choices = profiles.get_profile(profile).get("batch_choices", {})
    min_seconds = min_timed_seconds(profile)
    return {
        name: _fastest_batch(
            name,
            profiles.training_settings(profile, name, synthetic),
            tuple(choices.get(name, ())),
            (train_split, test_split),
            device,
            precision,
            seed,
            min_seconds,
        )
        for name in models.MODEL_NAMES
    }


def min_timed_seconds(profile: str) -> float:
    """How long the profile's plans time each model at least."""
    return profiles.get_profile(profile).get("min_timed_seconds", MIN_TIMED_SECONDS)


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
    demo_costs, min_seconds = {}, min_timed_seconds(profile)
    for name, (batch_size, augment) in demos.items():
        if batch_size == costs[name].batch_size:
            continue
        per_train, per_test, _ = time_model(
            name,
            batch_size,
            augment,
            train_split,
            test_split,
            device,
            precision,
            min_seconds=min_seconds,
        )
        demo_costs[name] = replace(
            costs[name],
            batch_size=batch_size,
            train_image_seconds=per_train,
            test_image_seconds=per_test,
        )
    return demo_costs


def try_compiling(
    profile: str,
    planned_images: dict[str, int],
    costs: dict[str, ModelCost],
    train_split: tuple,
    device: torch.device,
    precision: str = "auto",
    seed: int = 0,
) -> dict[str, ModelCost]:
    """``costs`` with the compiled steps of every model that the profile lists as worth trying
    (``compile_candidates``), that trains long enough (``planned_images``) for a compiler to pay
    (COMPILE_TRIAL_SECONDS), and whose saving, timed here, exceeds the compile time."""
    costs = dict(costs)
    for name in profiles.get_profile(profile).get("compile_candidates", ()):
        cost, images = costs[name], planned_images[name]
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


def speed_probe(device: str | torch.device = "auto", precision: str = "auto") -> float:
    """Seconds one training step of the CNN on a fixed batch takes here now (the run's device
    and precision, the steps' own code).

    The ratio of two probes says how much slower (above 1) or faster the machine has become
    between them: another program started or stopped, the clock changed.
    """
    device = runtime.select_device(device)
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (PROBE_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(PROBE_IMAGES, dtype=np.int64) % 10
    model = models.build_model("cnn").to(device)
    channels_last = runtime.use_channels_last(model, device)
    batch = loaders.TensorLoader(
        images, labels, PROBE_IMAGES, device=device, channels_last=channels_last
    )
    steps = [timing.measure_epoch_seconds(model, batch, 1, device, precision) for _ in range(3)]
    return statistics.median(steps)  # a median: one pause of a shared machine is not its speed
