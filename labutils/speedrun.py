"""airbench94's recipe: a fast network and training tricks that reach 94% on CIFAR-10 in ~10 epochs.

After Keller Jordan's airbench (github.com/KellerJordan/cifar10-airbench), rewritten for the lab
and for CPUs. Each trick is a small named function below, with a line on what it buys:

- the data stays one uint8 tensor; flips and translations are done a whole batch at a time
- alternating flip: every image is seen mirrored every other epoch, instead of at random
- a whitening first layer, set (not learned) from the covariance of 2x2 patches of the data
- a small network with shift-only batch norm, identity-initialised convolutions, GELU
- label smoothing 0.2
- Nesterov SGD with a warm-up/warm-down schedule and a 64x larger lr for batch-norm biases
- lookahead: the weights are pulled back towards a slow average of themselves every 5 steps
- test-time augmentation: the prediction averages mirrored and shifted views of each image
- Muon (airbench94_muon, the faster published recipe): each conv filter's update is
  orthogonalised, so every direction learns at the same pace; 94% in 8 epochs instead of 9.9
- bf16 autocast and channels_last where the hardware runs them fast (``labutils.runtime``)

``run_speedrun(source)`` runs the whole recipe once and returns its accuracy and seconds;
``Recipe`` switches tricks off, which notebook 05 uses to add them one at a time; ``RECIPES``
names the two published recipes and the lab's CPU variant. ``python -m labutils speedrun``
runs one for several seeds. ``seconds_per_recipe_step`` and ``describe_cost`` say what a run
will cost on this machine before it starts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from labutils import loaders, runtime, sources
from labutils.data import CLASSES
from labutils.params import check_choice, check_int, check_positive

# --------------------------------------------------------------------------- settings

# airbench94's hyperparameters. The lr and weight decay are "decoupled": each is given per
# 1024 images and independent of the momentum, so each can be tuned alone (see make_sgd).
EPOCHS = 9.9               # training stops after ceil(9.9 * steps per epoch) steps
BATCH_SIZE = 1024          # images per step
LR = 11.5                  # per 1024 images, independent of the momentum
MOMENTUM = 0.85            # Nesterov momentum
WEIGHT_DECAY = 0.0153      # per 1024 images, independent of the learning rate
BIAS_SCALER = 64.0         # batch-norm biases take 64x larger steps (the same weight decay)
LABEL_SMOOTHING = 0.2      # the target puts 0.8 + 0.02 on the true class, 0.02 on each other
WARMUP_FRACTION = 0.23     # the lr rises over the first 23% of the steps ...
LR_START, LR_END = 0.2, 0.07  # ... from 0.2 to 1.0 x LR, then falls linearly to 0.07 x LR
TRANSLATE = 2              # random shifts by up to 2 pixels (edges mirrored)
WHITEN_SIZE = 2            # the whitening layer looks at 2x2 patches ...
WHITEN_IMAGES = 5000       # ... of this many training images
WHITEN_EPS = 5e-4          # added to each eigenvalue, so near-constant directions stay small
WHITEN_BIAS_EPOCHS = 3     # the whitening layer's bias trains for 3 epochs, then freezes
WIDTHS = (64, 256, 256)    # output channels of the three conv groups
BATCHNORM_MOMENTUM = 0.4   # PyTorch's convention (airbench writes 0.6, the weight of the past)
BATCHNORM_EPS = 1e-12
LOGIT_SCALE = 1 / 9        # the logits are divided by 9
LOOKAHEAD_EVERY = 5        # steps between lookahead updates
LOOKAHEAD_DECAY = 0.95 ** 5  # the slow weights' share at the end of training (see lookahead_decay)
TTA_LEVELS = (0, 1, 2)     # 0: the image alone; 1: + its mirror image; 2: + shifted by one pixel
EVAL_BATCH_SIZE = 1000     # test images per forward pass

# airbench94_muon's hyperparameters: Muon for the conv filters, Nesterov SGD for the rest.
# airbench sums the loss over the batch; ours is the mean, so the SGD lrs are multiplied by the
# batch size (see make_muon). Muon's step does not depend on the gradient's scale.
MUON_EPOCHS = 8.0          # 94% on the official CIFAR-10 in 8 epochs instead of 9.9
MUON_BATCH_SIZE = 2000
MUON_LR = 0.24             # conv filters: the length of each (orthogonalised) step
MUON_MOMENTUM = 0.6        # Nesterov momentum of the filters
MUON_SGD_MOMENTUM = 0.85   # Nesterov momentum of the biases and the head
MUON_BIAS_LR = 0.053       # batch-norm and whitening biases, per image of the batch
MUON_HEAD_LR = 0.67        # the linear head, per image of the batch
MUON_WEIGHT_DECAY = 2e-6   # per image of the batch and step, on the biases and the head only
NEWTON_SCHULZ_STEPS = 3    # iterations that orthogonalise an update

# The lab's CPU recipe: airbench94_muon with narrower conv groups 2 and 3 (see RECIPES).
CPU_WIDTHS = (64, 192, 192)

# The lab's optimiser (Adam with the one-cycle schedule), for the ladder's rungs before Nesterov.
ADAM_MAX_LR = 0.01
ADAM_WEIGHT_DECAY = 1e-4
OPTIMIZERS = ("nesterov", "adam", "muon")

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

    whiten: bool = True                       # the whitening first layer (else learned)
    label_smoothing: float = LABEL_SMOOTHING  # 0: plain cross-entropy
    optimizer: str = "nesterov"               # "nesterov": airbench's SGD; "adam": the lab's;
                                              # "muon": airbench94_muon's
    lookahead: bool = True                    # the slow-weights average
    widths: tuple[int, int, int] = WIDTHS     # output channels of the three conv groups
    epochs: float = EPOCHS                    # the recipe's epochs and batch size, used when
    batch_size: int = BATCH_SIZE              # a run does not give its own


# airbench94_muon needs no lookahead: Muon's steps are steady enough. On a CPU a step's time
# is its arithmetic, which grows with the square of the width; airbench's widths were chosen
# for a GPU, where narrow layers save little time. Narrower conv groups 2 and 3 (192 channels:
# 30% less arithmetic per image) train the same 8 epochs in 30% less time and, measured on
# cifar10-dev, end as accurate as the full width stopped early at the same time.
AIRBENCH94_MUON = Recipe(optimizer="muon", lookahead=False, epochs=MUON_EPOCHS,
                         batch_size=MUON_BATCH_SIZE)
RECIPES = {
    "airbench94": Recipe(),
    "airbench94_muon": AIRBENCH94_MUON,
    "cpu": replace(AIRBENCH94_MUON, widths=CPU_WIDTHS),
}


def default_recipe(device: torch.device | str) -> str:
    """The recipe ``speedrun`` runs unless told: the CPU one on CPUs, airbench94_muon elsewhere."""
    return "cpu" if torch.device(device).type == "cpu" else "airbench94_muon"


# --------------------------------------------------------------------------- data


@dataclass
class SpeedData:
    """Both splits as tensors on the training device: uint8 images [N, 32, 32, 3], int64 labels."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    label: str = ""  # what the data is, for titles (``DataSource.label``)

    def to(self, device: torch.device | str) -> SpeedData:
        """The same data on ``device`` (no copy when it is there already)."""
        return SpeedData(self.train_images.to(device), self.train_labels.to(device),
                         self.test_images.to(device), self.test_labels.to(device), self.label)


def load_data(source: sources.DataSource, device: torch.device | str = "cpu") -> SpeedData:
    """Read both splits from disk once, as uint8 tensors on ``device``."""
    arrays = [torch.as_tensor(array) for split in ("train", "test")
              for array in source.load(split)]
    return SpeedData(*arrays, label=source.label).to(device)


def to_network_input(images: Tensor, channels_last: bool) -> Tensor:
    """uint8 [B, H, W, C] -> normalised float [B, C, H, W], in the memory format the net runs."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return loaders.normalize(images).contiguous(memory_format=memory_format)


def alternating_flip_mask(first_flips: Tensor, epoch: int) -> Tensor:
    """The images to mirror in ``epoch``: a random half in even epochs, the other half in odd.

    Each image is seen once each way in every two epochs; flipping at random each epoch shows
    half of them the same way as the epoch before, which teaches the network less.
    """
    return first_flips if epoch % 2 == 0 else ~first_flips


def train_batches(data: SpeedData, batch_size: int, epoch: int, first_flips: Tensor,
                  generator: torch.Generator, channels_last: bool):
    """One epoch of shuffled, flipped and shifted training batches; the last partial one dropped."""
    order = torch.randperm(len(data.train_labels), generator=generator,
                           device=data.train_labels.device)
    flips = alternating_flip_mask(first_flips, epoch)
    for start in range(0, len(order) - batch_size + 1, batch_size):
        index = order[start:start + batch_size]
        # On uint8 pixels, a whole batch at once: a quarter of the memory traffic of floats.
        images = loaders.random_crop(data.train_images[index], TRANSLATE, generator)
        images = torch.where(flips[index, None, None, None], images.flip(2), images)
        yield to_network_input(images, channels_last), data.train_labels[index]


# --------------------------------------------------------------------------- network


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """Batch norm that learns a shift (bias) per channel but keeps its scale at 1."""

    def __init__(self, channels: int, momentum: float = BATCHNORM_MOMENTUM,
                 eps: float = BATCHNORM_EPS) -> None:
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)  # the scale stays 1, as in airbench94


def identity_init_conv(in_channels: int, out_channels: int, kernel_size: int = 3,
                       padding: int | str = "same", bias: bool = False) -> nn.Conv2d:
    """A convolution whose first ``in_channels`` filters start as the identity (dirac).

    The untrained network then passes its input on, so the first steps start from a signal
    that is not scrambled by random weights.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:in_channels])
        if bias:
            conv.bias.zero_()
    return conv


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (halves the image size)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = identity_init_conv(in_channels, out_channels)
        self.pool = nn.MaxPool2d(2)  # pooling before BN: BN and GELU see 4x fewer pixels
        self.norm1 = ShiftOnlyBatchNorm(out_channels)
        self.conv2 = identity_init_conv(out_channels, out_channels)
        self.norm2 = ShiftOnlyBatchNorm(out_channels)
        self.activation = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.activation(self.norm1(self.pool(self.conv1(x))))
        return self.activation(self.norm2(self.conv2(x)))


class SpeedNet(nn.Module):
    """airbench94's network: a 2x2 whitening conv, three conv groups, max pooling, a linear head."""

    def __init__(self, widths: tuple[int, int, int] = WIDTHS, num_classes: int = len(CLASSES),
                 logit_scale: float = LOGIT_SCALE) -> None:
        super().__init__()
        whiten_width = 2 * 3 * WHITEN_SIZE ** 2  # every patch direction, with both signs
        self.whiten = identity_init_conv(3, whiten_width, WHITEN_SIZE, padding=0, bias=True)
        self.activation = nn.GELU()
        self.groups = nn.Sequential(ConvGroup(whiten_width, widths[0]),   # 31 -> 15 pixels
                                    ConvGroup(widths[0], widths[1]),      # 15 -> 7
                                    ConvGroup(widths[1], widths[2]))      # 7 -> 3
        self.pool = nn.MaxPool2d(3)                                       # 3 -> 1
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.logit_scale = logit_scale  # small logits: softer early predictions, steadier SGD

    def forward(self, images: Tensor) -> Tensor:
        x = self.activation(self.whiten(images))
        x = self.pool(self.groups(x)).flatten(1)
        return self.head(x) * self.logit_scale


def build_speed_net(device: torch.device | str = "cpu", recipe: Recipe | None = None) -> nn.Module:
    """A fresh ``SpeedNet`` for ``recipe`` on ``device``, in channels_last where that is faster."""
    recipe = recipe or Recipe()
    model = SpeedNet(recipe.widths)
    if recipe.optimizer == "muon":
        # airbench94_muon's head: unit-scale weights, logits divided by the width, which is
        # the scale its head lr was tuned for (the product starts as small as airbench94's).
        with torch.no_grad():
            model.head.weight /= model.head.weight.std()
        model.logit_scale = 1 / model.head.in_features
    channels_last = runtime.use_channels_last(model, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    return model.to(device, memory_format=memory_format)


# --------------------------------------------------------------------------- whitening


def patch_second_moment(images: Tensor, size: int = WHITEN_SIZE, chunk: int = 500) -> Tensor:
    """E[p p^T] over every ``size`` x ``size`` patch p of float images [N, C, H, W] (float64).

    A patch is flattened channel by channel, row by row: the order of a conv filter's weights.
    """
    channels = images.shape[1]
    total = torch.zeros(channels * size * size, channels * size * size, dtype=torch.float64,
                        device=images.device)
    count = 0
    for part in images.split(chunk):  # in chunks: 5000 images hold ~0.5 GB of float64 patches
        patches = part.double().unfold(2, size, 1).unfold(3, size, 1)  # [n, C, h, w, size, size]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * size * size)
        total += patches.T @ patches
        count += len(patches)
    return total / count


def whitening_filters(second_moment: Tensor, channels: int, size: int,
                      eps: float = WHITEN_EPS) -> Tensor:
    """Filters ±v/sqrt(lambda + eps) for each eigenvector v (eigenvalue lambda), largest first.

    Each filter's output has mean square lambda / (lambda + eps), about 1, and the outputs are
    uncorrelated: the layer "whitens" its patches. The negated copies let the GELU after it
    keep both signs of every direction.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)  # ascending order
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    filters = filters.reshape(-1, channels, size, size)
    return torch.cat([filters, -filters]).float()


def init_whitening(layer: nn.Conv2d, images: Tensor) -> None:
    """Set ``layer``'s weights to whiten the patches of normalised ``images``, and freeze them.

    The network then starts from decorrelated inputs of unit scale, which SGD learns fastest
    from, instead of spending its first epochs learning such a layer.
    """
    size = layer.kernel_size[0]
    filters = whitening_filters(patch_second_moment(images.float(), size), layer.in_channels, size)
    with torch.no_grad():
        layer.weight.copy_(filters)
    layer.weight.requires_grad_(False)


# --------------------------------------------------------------------------- optimiser


def lr_multiplier(step: int, total_steps: int) -> float:
    """airbench94's schedule: linear from 0.2 to 1.0 over 23% of the steps, then down to 0.07."""
    warmup_steps = int(total_steps * WARMUP_FRACTION)
    if step < warmup_steps:
        return LR_START + (1 - LR_START) * step / warmup_steps
    fraction = (step - warmup_steps) / (total_steps - warmup_steps)
    return 1 + (LR_END - 1) * fraction


def batchnorm_biases(model: nn.Module) -> list[nn.Parameter]:
    """The shift of every batch-norm layer."""
    return [module.bias for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


def make_sgd(model: nn.Module, batch_size: int) -> torch.optim.SGD:
    """airbench94's Nesterov SGD, with its decoupled lr and weight decay made PyTorch's.

    Nesterov momentum m makes a step about 1 + 1/(1 - m) gradients long, so the lr is divided
    by that. Our loss is the batch mean where airbench sums it, so the lr is multiplied by the
    batch size. Batch-norm biases get a 64x larger lr, and the same decay per step.
    """
    kilostep_scale = 1024 * (1 + 1 / (1 - MOMENTUM))
    lr = LR / kilostep_scale * batch_size
    decay_per_step = WEIGHT_DECAY * batch_size / kilostep_scale  # PyTorch decays by lr * wd
    biases = batchnorm_biases(model)
    others = [parameter for parameter in model.parameters()
              if parameter.requires_grad and all(parameter is not bias for bias in biases)]
    groups = [dict(params=biases, lr=lr * BIAS_SCALER,
                   weight_decay=decay_per_step / (lr * BIAS_SCALER)),
              dict(params=others, lr=lr, weight_decay=decay_per_step / lr)]
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, nesterov=True)


def orthogonalize(update: Tensor, steps: int = NEWTON_SCHULZ_STEPS, eps: float = 1e-7) -> Tensor:
    """Push every singular value of a 2-D ``update`` towards 1, keeping its singular vectors.

    A few Newton-Schulz iterations (an odd polynomial in the matrix, in bf16) do it without an
    SVD. The coefficients are airbench's, chosen to grow small singular values fast: the result
    has singular values roughly between 0.5 and 1.5, which trains as well as exactly 1.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = update.bfloat16()
    x = x / (x.norm() + eps)  # every singular value now at most 1
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(update.dtype)


class Muon(torch.optim.Optimizer):
    """airbench94_muon's optimiser: Muon for the groups with ``orthogonalize``, SGD for the rest.

    Both use Nesterov momentum. In a Muon group each filter bank's update is orthogonalised
    (so rare directions learn as fast as common ones) and the weights are rescaled to a fixed
    norm before each step (the batch norm after them makes their scale irrelevant, and a fixed
    scale keeps the lr meaningful). The other groups take plain SGD steps with weight decay.
    """

    def __init__(self, groups: list[dict]) -> None:
        super().__init__(groups, dict(momentum=0.0, weight_decay=0.0, orthogonalize=False))

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                gradient = parameter.grad
                if not group["orthogonalize"]:
                    gradient = gradient.add(parameter, alpha=group["weight_decay"])
                state = self.state[parameter]
                momentum = state.setdefault("momentum_buffer", torch.zeros_like(parameter))
                momentum.mul_(group["momentum"]).add_(gradient)
                update = gradient.add(momentum, alpha=group["momentum"])  # Nesterov
                if group["orthogonalize"]:
                    parameter.mul_(len(parameter) ** 0.5 / parameter.norm())
                    update = orthogonalize(update.flatten(1)).view_as(parameter)
                parameter.add_(update, alpha=-group["lr"])


def make_muon(model: nn.Module, batch_size: int, total_steps: int, steps_per_epoch: int):
    """airbench94_muon's optimiser and schedule: every lr falls linearly to 0 over the run, the
    whitening bias's over its first ``WHITEN_BIAS_EPOCHS`` epochs (it is frozen after them)."""
    filters = [parameter for parameter in model.parameters()
               if parameter.ndim == 4 and parameter.requires_grad]
    decay_per_step = MUON_WEIGHT_DECAY * batch_size  # airbench's, on a summed loss

    def sgd_group(params: list[nn.Parameter], lr: float) -> dict:
        # Our loss is the batch mean: a batch_size times larger lr takes airbench's step.
        return dict(params=params, lr=lr * batch_size, momentum=MUON_SGD_MOMENTUM,
                    weight_decay=decay_per_step / (lr * batch_size))

    groups = [sgd_group([model.whiten.bias], MUON_BIAS_LR),
              sgd_group(batchnorm_biases(model), MUON_BIAS_LR),
              sgd_group([model.head.weight], MUON_HEAD_LR),
              dict(params=filters, lr=MUON_LR, momentum=MUON_MOMENTUM, orthogonalize=True)]
    optimizer = Muon(groups)
    whiten_bias_steps = math.ceil(WHITEN_BIAS_EPOCHS * steps_per_epoch)
    schedules = [lambda step: max(0.0, 1 - step / whiten_bias_steps)]
    schedules += [lambda step: 1 - step / total_steps] * 3
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedules)


def make_optimizer(recipe: Recipe, model: nn.Module, batch_size: int, total_steps: int,
                   steps_per_epoch: int | None = None):
    """The optimiser and its per-step lr scheduler for ``recipe``.

    Muon's schedule also needs ``steps_per_epoch``: the whitening bias trains for a number of
    epochs, not a share of the run.
    """
    if recipe.optimizer == "muon":
        if steps_per_epoch is None:
            raise ValueError("make_optimizer needs steps_per_epoch for a Muon recipe: pass "
                             "len(train_labels) // batch_size.")
        return make_muon(model, batch_size, total_steps, steps_per_epoch)
    if recipe.optimizer == "adam":  # the lab's: Adam with the one-cycle schedule
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=ADAM_MAX_LR, weight_decay=ADAM_WEIGHT_DECAY)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, ADAM_MAX_LR,
                                                        total_steps=total_steps)
        return optimizer, scheduler
    optimizer = make_sgd(model, batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, total_steps))
    return optimizer, scheduler


# --------------------------------------------------------------------------- lookahead


def lookahead_decay(step: int, total_steps: int) -> float:
    """The slow weights' share at ``step``: 0.95**5 * (step / total)**3, ~0 early, 0.77 at the end."""
    return LOOKAHEAD_DECAY * (step / total_steps) ** 3


class Lookahead:
    """A slow copy of the weights (and batch-norm statistics) that the network is pulled back to.

    Every few steps the slow copy moves part of the way towards the network, and the network
    jumps to it. Late in training this averages away the noise of the last SGD steps.
    """

    def __init__(self, model: nn.Module) -> None:
        self.slow = {name: value.detach().clone() for name, value in model.state_dict().items()
                     if value.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        """slow = decay * slow + (1 - decay) * network; then network = slow."""
        state = model.state_dict()
        for name, slow in self.slow.items():
            slow.lerp_(state[name], 1 - decay)
            state[name].copy_(slow)


# --------------------------------------------------------------------------- evaluation


def tta_views(images: Tensor, level: int) -> list[tuple[float, Tensor]]:
    """The weighted views of normalised images [B, C, H, W] that test-time augmentation averages.

    Level 0: the images. Level 1: half the images, half their mirror images. Level 2: a quarter
    each for the images and their mirrors, an eighth each for the images moved one pixel
    down-right and up-left (edges mirrored) and for their mirrors.
    """
    check_choice("tta_level", level, TTA_LEVELS)
    if level == 0:
        return [(1.0, images)]
    if level == 1:
        return [(0.5, images), (0.5, images.flip(-1))]
    height, width = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    moved_down_right = padded[..., :height, :width]
    moved_up_left = padded[..., 2:, 2:]
    return [(0.25, images), (0.25, images.flip(-1)),
            (0.125, moved_down_right), (0.125, moved_down_right.flip(-1)),
            (0.125, moved_up_left), (0.125, moved_up_left.flip(-1))]


def tta_logits(model: nn.Module, images: Tensor, level: int = 2) -> Tensor:
    """The weighted mean of ``model``'s logits over the views of ``tta_views``: one row per image."""
    memory_format = (torch.channels_last if images.is_contiguous(memory_format=torch.channels_last)
                     else torch.contiguous_format)
    return sum(weight * model(view.contiguous(memory_format=memory_format)).float()
               for weight, view in tta_views(images, level))


def predict(model: nn.Module, images: Tensor, tta_level: int = 0, dtype: torch.dtype | None = None,
            batch_size: int = EVAL_BATCH_SIZE) -> Tensor:
    """Logits [N, 10] for uint8 images [N, 32, 32, 3], averaged over test-time augmentations."""
    parameter = next(model.parameters())
    channels_last = runtime.use_channels_last(model, parameter.device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), runtime.autocast(parameter.device, dtype):
            return torch.cat([tta_logits(model, to_network_input(chunk, channels_last), tta_level)
                              for chunk in images.to(parameter.device).split(batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, tta_level: int = 0,
             dtype: torch.dtype | None = None) -> float:
    """Accuracy in [0, 1]; ``tta_level=0`` is the fast evaluation, one forward pass per image."""
    logits = predict(model, images, tta_level, dtype)
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()


# --------------------------------------------------------------------------- training


def train_step(model: nn.Module, optimizer, images: Tensor, labels: Tensor,
               label_smoothing: float, dtype: torch.dtype | None) -> tuple[Tensor, Tensor]:
    """One optimiser step on one batch; returns the batch's summed loss and correct count (tensors)."""
    with runtime.autocast(images.device, dtype):
        logits = model(images)
    # Label smoothing: the network is not pushed towards infinite confidence on any image.
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach() * len(labels), (logits.argmax(dim=1) == labels).sum()


def train_speed_net(model: nn.Module, data: SpeedData, recipe: Recipe, epochs: float,
                    batch_size: int, seed: int, dtype: torch.dtype | None,
                    progress: bool | None = None) -> list[dict]:
    """Train for ceil(epochs x steps per epoch) steps; return one record per (partial) epoch."""
    device = data.train_images.device
    steps_per_epoch = len(data.train_labels) // batch_size
    total_steps = math.ceil(steps_per_epoch * epochs)
    optimizer, scheduler = make_optimizer(recipe, model, batch_size, total_steps, steps_per_epoch)
    lookahead = Lookahead(model) if recipe.lookahead else None
    channels_last = runtime.use_channels_last(model, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    first_flips = torch.rand(len(data.train_labels), generator=generator, device=device) < 0.5
    history, step = [], 0
    bar = tqdm(total=total_steps, unit="step", leave=False,
               disable=not runtime.progress_enabled(progress))
    for epoch in range(math.ceil(epochs)):
        if recipe.whiten:
            model.whiten.bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
        model.train()
        loss_sum, correct, seen = torch.zeros((), device=device), 0, 0
        for images, labels in train_batches(data, batch_size, epoch, first_flips, generator,
                                            channels_last):
            batch_loss, batch_correct = train_step(model, optimizer, images, labels,
                                                   recipe.label_smoothing, dtype)
            scheduler.step()
            step, seen = step + 1, seen + len(labels)
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            if lookahead is not None and step % LOOKAHEAD_EVERY == 0:
                lookahead.update(model, lookahead_decay(step, total_steps))
            bar.update()
            if step == total_steps:
                break
        history.append({"epoch": epoch + 1, "steps": step, "train_loss": loss_sum.item() / seen,
                        "train_acc": float(correct) / seen})
    bar.close()
    if lookahead is not None:
        lookahead.update(model, 1.0)  # end on the slow weights
    return history


def _check_run(epochs, batch_size, tta_level, seed, recipe: Recipe, train_count: int) -> None:
    check_positive("epochs", epochs)
    check_int("batch_size", batch_size, minimum=1)
    check_choice("tta_level", tta_level, TTA_LEVELS)
    check_int("seed", seed, minimum=0)
    check_choice("recipe.optimizer", recipe.optimizer, OPTIMIZERS)
    check_positive("recipe.label_smoothing", recipe.label_smoothing, allow_zero=True)
    if batch_size > train_count:
        raise ValueError(f"batch_size = {batch_size} is larger than the {train_count} training "
                         f"images, so an epoch has no full batch: use a smaller batch size.")


def _clock(device: torch.device) -> float:
    runtime.synchronize(device)  # a GPU's queued work belongs to the interval that queued it
    return time.perf_counter()


def run_speedrun(source: sources.DataSource | SpeedData, epochs: float | None = None,
                 batch_size: int | None = None, tta_level: int = 2, seed: int = 0,
                 device: str | torch.device = "auto", precision: str = "auto",
                 progress: bool | None = None, recipe: Recipe | None = None) -> dict:
    """Train airbench94's network with ``recipe`` (airbench94's by default) and test it.

    ``epochs`` and ``batch_size`` default to the recipe's published ones.
    ``seconds`` counts the whitening, the training and the final (TTA) evaluation; reading the
    files and building the network come before the clock starts. Pass ``load_data(source)``
    instead of a source to read the files once for several runs. The result holds plain
    numbers, the per-epoch ``history`` and, under ``"model"``, the trained network.
    """
    recipe = recipe or Recipe()
    epochs = recipe.epochs if epochs is None else epochs
    batch_size = recipe.batch_size if batch_size is None else batch_size
    device = runtime.select_device(device)
    dtype = runtime.select_precision(device, precision)
    data = (source if isinstance(source, SpeedData) else load_data(source)).to(device)
    _check_run(epochs, batch_size, tta_level, seed, recipe, len(data.train_labels))
    runtime.keep_freed_memory()
    runtime.seed_everything(seed)
    model = build_speed_net(device, recipe)
    start = _clock(device)
    if recipe.whiten:
        init_whitening(model.whiten, to_network_input(data.train_images[:WHITEN_IMAGES], False))
    whitened = _clock(device)
    history = train_speed_net(model, data, recipe, epochs, batch_size, seed, dtype, progress)
    trained = _clock(device)
    test_acc = evaluate(model, data.test_images, data.test_labels, tta_level, dtype)
    tested = _clock(device)
    test_acc_no_tta = test_acc if tta_level == 0 else \
        evaluate(model, data.test_images, data.test_labels, 0, dtype)
    return {"test_acc": test_acc, "test_acc_no_tta": test_acc_no_tta,
            "seconds": tested - start, "seconds_whiten": whitened - start,
            "seconds_train": trained - whitened, "seconds_tta": tested - trained,
            "epochs": epochs, "batch_size": batch_size, "steps": history[-1]["steps"],
            "tta_level": tta_level, "seed": seed, "recipe": asdict(recipe), "data": data.label,
            "runtime": runtime.describe_runtime(device, dtype,
                                                runtime.use_channels_last(model, device)),
            "history": history, "model": model}


# --------------------------------------------------------------------------- cost estimates


def seconds_per_step(model: nn.Module, batch_size: int, device: torch.device | str,
                     dtype: torch.dtype | None = None, optimizer=None,
                     calls: int = 1) -> float:
    """Seconds one training step of ``model`` takes on ``device``: the mean of ``calls`` steps
    on a random batch, after one untimed warm-up step.

    The steps change the weights: time a throwaway network. ``optimizer`` defaults to Adam.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("calls", calls, minimum=1)
    device = torch.device(device)
    channels_last = runtime.use_channels_last(model, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model = model.to(device, memory_format=memory_format).train()
    optimizer = optimizer or torch.optim.Adam(model.parameters())
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 32, 32, 3), dtype=torch.uint8,
                           generator=generator, device=device)
    images = to_network_input(images, channels_last)
    labels = torch.randint(0, len(CLASSES), (batch_size,), generator=generator, device=device)
    train_step(model, optimizer, images, labels, 0.0, dtype)  # first-call setup, untimed
    start = _clock(device)
    for _ in range(calls):
        train_step(model, optimizer, images, labels, 0.0, dtype)
    return (_clock(device) - start) / calls


def seconds_per_recipe_step(recipe: Recipe, batch_size: int, device: torch.device | str,
                            dtype: torch.dtype | None = None, calls: int = 1) -> float:
    """``seconds_per_step`` of a fresh network of ``recipe`` with its optimiser."""
    model = build_speed_net(device, recipe)
    optimizer, _ = make_optimizer(recipe, model, batch_size, total_steps=100, steps_per_epoch=10)
    return seconds_per_step(model, batch_size, device, dtype, optimizer, calls)


def format_duration(seconds: float) -> str:
    """A duration as a person reads it: '0.42 s', '38 s', '14 min', '1.6 h'."""
    if seconds < 90:
        return f"{seconds:.2g} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_cost(runs: int, epochs: float, steps_per_epoch: int, step_seconds: float) -> str:
    """What ``runs`` trainings of ``epochs`` will take, for a line printed before a long cell:
    '4 runs x 5 epoch(s) x 48 steps x 0.95 s = about 15 min of training steps'."""
    total = runs * math.ceil(epochs * steps_per_epoch) * step_seconds
    return (f"{runs} run{'s' if runs != 1 else ''} x {epochs:g} epoch(s) x {steps_per_epoch} "
            f"step{'s' if steps_per_epoch != 1 else ''} x {step_seconds:.2g} s = about "
            f"{format_duration(total)} of training steps")


# --------------------------------------------------------------------------- command line


def format_result(result: dict) -> str:
    """One line for one seed: accuracy with and without TTA, and where the seconds went."""
    return (f"seed {result['seed']}: test_acc {result['test_acc']:.4f} "
            f"(without TTA {result['test_acc_no_tta']:.4f})  {result['seconds']:.1f}s "
            f"(whitening {result['seconds_whiten']:.1f}s, training {result['seconds_train']:.1f}s,"
            f" TTA evaluation {result['seconds_tta']:.1f}s)")


def command_speedrun(args: argparse.Namespace) -> int:
    """Run the recipe for ``--seeds`` seeds; the last line is ``mean_test_acc=... mean_seconds=...``."""
    check_int("--seeds", args.seeds, minimum=1)
    device = runtime.select_device(args.device)
    source = sources.get_data_source(args.data, args.root, verify=args.verify)
    print(source.describe(), flush=True)
    name = args.recipe if args.recipe != "auto" else default_recipe(device)
    recipe = RECIPES[name]
    data = load_data(source, device)  # read once, before any clock starts
    results = []
    for seed in range(args.seeds):
        result = run_speedrun(data, epochs=args.epochs, batch_size=args.batch_size,
                              tta_level=args.tta, seed=seed, device=device,
                              precision=args.precision, recipe=recipe)
        if seed == 0:
            print(f"recipe {name}: {result['epochs']} epochs, batches of "
                  f"{result['batch_size']}; {result['runtime']}")
        print(format_result(result), flush=True)
        results.append(result)
    mean_acc = statistics.fmean(result["test_acc"] for result in results)
    mean_seconds = statistics.fmean(result["seconds"] for result in results)
    print(f"mean_test_acc={mean_acc:.4f} mean_seconds={mean_seconds:.2f}")
    return 0


def add_speedrun_command(commands) -> None:
    """Register ``speedrun`` on the sub-command parsers of ``python -m labutils``."""
    from labutils.cli import add_data_arguments  # here: labutils.cli imports this module

    parser = commands.add_parser(
        "speedrun", help="train airbench94's fast recipe, several seeds; print accuracy and time",
        description="Train airbench94's network and recipe (94% on CIFAR-10 in 8 epochs with "
                    "Muon, 9.9 without) once per seed. Seconds count the whitening, the "
                    "training and the test-time-augmented evaluation, not reading the files.")
    add_data_arguments(parser)
    parser.add_argument("--recipe", choices=("auto", *RECIPES), default="auto",
                        help="airbench94: Nesterov SGD and lookahead, 9.9 epochs of 1024; "
                             "airbench94_muon: Muon for the filters, 8 epochs of 2000; cpu: "
                             "airbench94_muon with narrower conv groups, for CPUs; auto: cpu on "
                             "a CPU, else airbench94_muon (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs, with seeds 0, 1, ... (default: %(default)s)")
    parser.add_argument("--epochs", type=float, default=None,
                        help="epochs, fractions allowed (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default: the recipe's)")
    parser.add_argument("--tta", type=int, choices=TTA_LEVELS, default=2,
                        help="test-time augmentation: 0 none, 1 mirror, 2 mirror and one-pixel "
                             "shifts (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--precision", default="auto", choices=runtime.PRECISION_CHOICES,
                        help="auto: bf16 autocast where the hardware runs it natively "
                             "(default: %(default)s)")
    parser.set_defaults(handler=command_speedrun)
