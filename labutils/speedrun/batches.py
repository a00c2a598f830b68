"""The speed track's data path, after airbench: both splits kept as uint8 tensors on the device,
training batches flipped and shifted a whole batch at a time, and an evaluation that averages
mirrored and shifted views of each test image (test-time augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labutils import loaders, runtime, sources
from labutils.checks import check_choice

TRANSLATE = 2  # random shifts by up to 2 pixels (edges mirrored)
TTA_LEVELS = (0, 1, 2)  # 0: the image alone; 1: + its mirror image; 2: + shifted by one pixel
EVAL_BATCH_SIZE = 1000  # test images per forward pass


# --------------------------------------------------------------------------- training data


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
        return SpeedData(
            self.train_images.to(device),
            self.train_labels.to(device),
            self.test_images.to(device),
            self.test_labels.to(device),
            self.label,
        )


def load_data(source: sources.DataSource, device: torch.device | str = "cpu") -> SpeedData:
    """Read both splits from disk once, as uint8 tensors on ``device``."""
    arrays = [torch.as_tensor(array) for split in ("train", "test") for array in source.load(split)]
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


def train_batches(
    data: SpeedData,
    batch_size: int,
    epoch: int,
    first_flips: Tensor,
    generator: torch.Generator,
    channels_last: bool,
):
    """One epoch of shuffled, flipped and shifted training batches; the last partial one dropped."""
    order = torch.randperm(
        len(data.train_labels), generator=generator, device=data.train_labels.device
    )
    flips = alternating_flip_mask(first_flips, epoch)
    for start in range(0, len(order) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        # On uint8 pixels, a whole batch at once: a quarter of the memory traffic of floats.
        images = loaders.random_crop(data.train_images[index], TRANSLATE, generator)
        images = torch.where(flips[index, None, None, None], images.flip(2), images)
        yield to_network_input(images, channels_last), data.train_labels[index]


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
    return [
        (0.25, images),
        (0.25, images.flip(-1)),
        (0.125, moved_down_right),
        (0.125, moved_down_right.flip(-1)),
        (0.125, moved_up_left),
        (0.125, moved_up_left.flip(-1)),
    ]


def tta_logits(model: nn.Module, images: Tensor, level: int = 2) -> Tensor:
    """The weighted mean of ``model``'s logits over the ``tta_views``: one row per image."""
    memory_format = (
        torch.channels_last
        if images.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    return sum(
        weight * model(view.contiguous(memory_format=memory_format)).float()
        for weight, view in tta_views(images, level)
    )


def predict(
    model: nn.Module,
    images: Tensor,
    tta_level: int = 0,
    dtype: torch.dtype | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> Tensor:
    """Logits [N, 10] for uint8 images [N, 32, 32, 3], averaged over test-time augmentations."""
    parameter = next(model.parameters())
    channels_last = runtime.use_channels_last(model, parameter.device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), runtime.autocast(parameter.device, dtype):
            return torch.cat(
                [
                    tta_logits(model, to_network_input(chunk, channels_last), tta_level)
                    for chunk in images.to(parameter.device).split(batch_size)
                ]
            )
    finally:
        model.train(was_training)


def tta_accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    tta_level: int = 0,
    dtype: torch.dtype | None = None,
) -> float:
    """Accuracy in [0, 1]; ``tta_level=0`` is the fast evaluation, one forward pass per image."""
    logits = predict(model, images, tta_level, dtype)
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()
