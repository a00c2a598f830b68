"""airbench94's recipes: which training tricks a speed run uses, how wide its network is and how
long it trains.

``Recipe`` switches tricks off, which notebook 05 uses to add them one at a time; ``RECIPES``
names the two published recipes and the lab's CPU variant. The numbers each trick is tuned with
sit beside its code: the network's in ``speednet``, the optimisers' in ``optimizers``, the
data's in ``speeddata``. This module is the bottom of the speed track: it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from labutils.checks import check_choice

EPOCHS = 9.9  # airbench94 stops after ceil(9.9 * steps per epoch) steps
BATCH_SIZE = 1024  # images per step
LABEL_SMOOTHING = 0.2  # the target puts 0.8 + 0.02 on the true class, 0.02 on each other
WIDTHS = (64, 256, 256)  # output channels of the three conv groups
OPTIMIZERS = ("nesterov", "adam", "muon")  # airbench94's SGD, the lab's Adam, airbench94_muon's

# airbench94_muon, the faster published recipe: 94% on the official CIFAR-10 in 8 epochs
# instead of 9.9, in larger batches.
MUON_EPOCHS = 8.0
MUON_BATCH_SIZE = 2000

# The lab's CPU recipe: airbench94_muon with narrower conv groups 2 and 3 (see RECIPES).
CPU_WIDTHS = (64, 192, 192)

# How long notebook 05's ladder runs under each profile (its EPOCHS/BATCH_SIZE = None take
# these). On real data the cpu profile trains 5 epochs per rung (5 runs, about 40 minutes on
# 2 cores with bf16); on the small synthetic sets, smaller batches give enough steps to learn.
LADDER_SIZES = {
    "smoke": dict(epochs=1, batch_size=50),  # 4 full batches of the 200 smoke images
    "cpu": dict(epochs=5, batch_size=BATCH_SIZE),
    "gpu": dict(epochs=EPOCHS, batch_size=BATCH_SIZE),
}
SYNTHETIC_LADDER_SIZES = {
    "smoke": dict(epochs=1, batch_size=50),  # 4 full batches of the 200 smoke images
    "cpu": dict(epochs=1, batch_size=64),
    "gpu": dict(epochs=5, batch_size=128),
}


def ladder_sizes(profile: str, synthetic: bool) -> dict:
    """Epochs and batch size of notebook 05's ladder under ``profile`` (a copy)."""
    table = SYNTHETIC_LADDER_SIZES if synthetic else LADDER_SIZES
    check_choice("PROFILE", profile, tuple(table))
    return dict(table[profile])


@dataclass(frozen=True)
class Recipe:
    """Which of airbench's training tricks to use (all of airbench94's by default), how wide the
    network is, and how long the published recipe trains."""

    whiten: bool = True  # the whitening first layer (else learned)
    label_smoothing: float = LABEL_SMOOTHING  # 0: plain cross-entropy
    optimizer: str = "nesterov"  # "nesterov": airbench's SGD; "adam": the lab's;
    # "muon": airbench94_muon's
    lookahead: bool = True  # the slow-weights average
    widths: tuple[int, int, int] = WIDTHS  # output channels of the three conv groups
    epochs: float = EPOCHS  # the recipe's epochs and batch size, used when
    batch_size: int = BATCH_SIZE  # a run does not give its own


# airbench94_muon needs no lookahead: Muon's steps are steady enough. On a CPU a step's time
# is its arithmetic, which grows with the square of the width; airbench's widths were chosen
# for a GPU, where narrow layers save little time. Narrower conv groups 2 and 3 (192 channels:
# 30% less arithmetic per image) train the same 8 epochs in 30% less time and, measured on
# cifar10-dev, end as accurate as the full width stopped early at the same time.
AIRBENCH94_MUON = Recipe(
    optimizer="muon", lookahead=False, epochs=MUON_EPOCHS, batch_size=MUON_BATCH_SIZE
)
RECIPES = {
    "airbench94": Recipe(),
    "airbench94_muon": AIRBENCH94_MUON,
    "cpu": replace(AIRBENCH94_MUON, widths=CPU_WIDTHS),
}


def default_recipe(device: torch.device | str) -> str:
    """The recipe ``speedrun`` runs unless told: the CPU one on CPUs, airbench94_muon elsewhere."""
    return "cpu" if torch.device(device).type == "cpu" else "airbench94_muon"
