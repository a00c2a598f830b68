"""airbench94's network: a whitening first layer set from the data, three conv groups, a head.

``build_speed_net(device, recipe)`` makes a fresh ``SpeedNet`` for a recipe (its widths, and
Muon's head scale); ``init_whitening`` sets its first layer from the covariance of 2x2 patches
of the training images instead of learning it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from labutils import runtime
from labutils.data import CLASSES
from labutils.speedrun.recipes import WIDTHS, Recipe

WHITEN_SIZE = 2  # the whitening layer looks at 2x2 patches ...
WHITEN_IMAGES = 5000  # ... of this many training images
WHITEN_EPS = 5e-4  # added to each eigenvalue, so near-constant directions stay small
BATCHNORM_MOMENTUM = 0.4  # PyTorch's convention (airbench writes 0.6, the weight of the past)
BATCHNORM_EPS = 1e-12
LOGIT_SCALE = 1 / 9  # the logits are divided by 9


# --------------------------------------------------------------------------- network


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """Batch norm that learns a shift (bias) per channel but keeps its scale at 1."""

    def __init__(
        self, channels: int, momentum: float = BATCHNORM_MOMENTUM, eps: float = BATCHNORM_EPS
    ) -> None:
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)  # the scale stays 1, as in airbench94


def identity_init_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    padding: int | str = "same",
    bias: bool = False,
) -> nn.Conv2d:
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

    def __init__(
        self,
        widths: tuple[int, int, int] = WIDTHS,
        num_classes: int = len(CLASSES),
        logit_scale: float = LOGIT_SCALE,
    ) -> None:
        super().__init__()
        whiten_width = 2 * 3 * WHITEN_SIZE**2  # every patch direction, with both signs
        self.whiten = identity_init_conv(3, whiten_width, WHITEN_SIZE, padding=0, bias=True)
        self.activation = nn.GELU()
        self.groups = nn.Sequential(
            ConvGroup(whiten_width, widths[0]),  # 31 -> 15 pixels
            ConvGroup(widths[0], widths[1]),  # 15 -> 7
            ConvGroup(widths[1], widths[2]),
        )  # 7 -> 3
        self.pool = nn.MaxPool2d(3)  # 3 -> 1
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
    return model.to(device, memory_format=runtime.memory_format(model, device))


# --------------------------------------------------------------------------- whitening


def patch_second_moment(images: Tensor, size: int = WHITEN_SIZE, chunk: int = 500) -> Tensor:
    """E[p p^T] over every ``size`` x ``size`` patch p of float images [N, C, H, W] (float64).

    A patch is flattened channel by channel, row by row: the order of a conv filter's weights.
    """
    channels = images.shape[1]
    total = torch.zeros(
        channels * size * size, channels * size * size, dtype=torch.float64, device=images.device
    )
    count = 0
    for part in images.split(chunk):  # in chunks: 5000 images hold ~0.5 GB of float64 patches
        patches = part.double().unfold(2, size, 1).unfold(3, size, 1)  # [n, C, h, w, size, size]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * size * size)
        total += patches.T @ patches
        count += len(patches)
    return total / count


def whitening_filters(
    second_moment: Tensor, channels: int, size: int, eps: float = WHITEN_EPS
) -> Tensor:
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
