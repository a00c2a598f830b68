"""Batches for training and evaluation.

``TensorLoader`` is the fast path: a whole split held as one uint8 tensor, normalised and
augmented a whole batch at a time, reshuffled every epoch from a generator seeded by
(seed, epoch), so a run can be repeated, or resumed, exactly. Under data-parallel training
(``set_shard``) every process draws the same order and keeps its own slice of each batch.
``report_loaders`` is the report's pipeline (PIL images transformed one at a time in a
``DataLoader``), kept to compare against.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torchvision import transforms

from labutils.checks import check_int
from labutils.data import CIFAR10, MEAN, STD


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed for one epoch, so nearby seeds and epochs give unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def normalize(images: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 [B, H, W, C] -> float [B, C, H, W] (stored channels-last), zero mean, unit std."""
    scale = torch.tensor([1 / (255 * s) for s in std], device=images.device)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], device=images.device)
    return torch.addcmul(shift, images.float(), scale).permute(0, 3, 1, 2)


def unnormalize(images: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """Undo ``normalize`` to look at images: float [B, C, H, W] -> CPU [B, H, W, C] in [0, 1].

    Clamped to [0, 1], the range an image is shown in: rounding can land just outside it.
    """
    images = torch.as_tensor(images).detach().float().cpu()
    mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (images * std + mean).clamp(0, 1).movedim(-3, -1)


def reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices that fall off the edge back inside by mirroring (as reflection padding)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each uint8 image [B, H, W, C] by up to ``padding`` pixels, reflecting at the edges.

    The same as padding by reflection and cutting a random window, done as one gather.
    """
    count, height, width, _ = images.shape
    device = images.device
    offsets = torch.randint(-padding, padding + 1, (2, count), generator=generator, device=device)
    rows = reflect(offsets[0, :, None] + torch.arange(height, device=device), height)
    columns = reflect(offsets[1, :, None] + torch.arange(width, device=device), width)
    batch = torch.arange(count, device=device)[:, None, None]
    return images[batch, rows[:, :, None], columns[:, None, :]]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images [B, H, W, C] left-right."""
    flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(2), images)


class TensorLoader:
    """Yield ``(images, labels)`` batches like a DataLoader, from a split kept as one tensor."""

    def __init__(
        self,
        images,
        labels,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        padding: int = 4,
        mean=MEAN,
        std=STD,
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.images = torch.as_tensor(images, dtype=torch.uint8).to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        if (
            self.images.ndim != 4
            or self.images.shape[3] != 3
            or len(self.images) != len(self.labels)
        ):
            raise ValueError(
                f"expected images [N, 32, 32, 3] and N labels, got "
                f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}."
            )
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.seed, self.channels_last, self.padding = seed, channels_last, padding
        self.mean, self.std = mean, std
        self.epoch = 0
        self.shard_index, self.num_shards = 0, 1

    def set_shard(self, index: int, count: int) -> None:
        """Yield only slice ``index`` of ``count`` of every batch: one process's share.

        The batch size stays the global batch, so ``len`` and the order do not change; the
        slices of a batch differ in size by one image at most.
        """
        check_int("count", count, minimum=1)
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} is not valid: use 0 to {count - 1}.")
        if self.batch_size < count:
            raise ValueError(
                f"batch size {self.batch_size} is smaller than the {count} processes sharing "
                f"it: the batch size is the global batch, so use at least {count}."
            )
        self.shard_index, self.num_shards = int(index), int(count)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_images // self.batch_size
        return -(-self.num_images // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and augmentations the next pass reproduces."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        self.epoch += 1  # a second pass without set_epoch gets a fresh order, as a DataLoader
        if self.shuffle:
            order = torch.randperm(self.num_images, generator=generator, device=self.device)
        else:
            order = torch.arange(self.num_images, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size]
            yield (
                self._make_batch(self.images[indices], generator),
                self._share(self.labels[indices]),
            )

    def _share(self, batch: torch.Tensor) -> torch.Tensor:
        if self.num_shards == 1:
            return batch
        return batch.tensor_split(self.num_shards)[self.shard_index]

    def _make_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.augment:  # on uint8 pixels: a quarter of the memory traffic of floats
            images = random_flip(random_crop(images, self.padding, generator), generator)
        # Augmented whole, then shared: each image gets the same crop and flip in any number
        # of processes, and every process's generator stays in step.
        batch = normalize(self._share(images), self.mean, self.std)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return batch.contiguous(memory_format=memory_format)


def training_part(images, labels, fraction: float, seed: int = 0):
    """``fraction`` of the images and labels, drawn at random from ``seed`` (all when 1)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction = {fraction!r} is not valid: use a number in (0, 1].")
    if fraction == 1:
        return images, labels
    count = max(1, round(fraction * len(labels)))
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(labels), generator=generator)[:count].sort().values.numpy()
    return images[keep], labels[keep]


def make_loaders(
    source,
    batch_size: int,
    *,
    augment: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    channels_last: bool = False,
    test_batch_size: int | None = None,
    train_fraction: float = 1.0,
) -> tuple[TensorLoader, TensorLoader]:
    """Train and test loaders for a ``DataSource``: shuffled and augmented, then plain.

    ``train_fraction`` < 1 trains on that part of the training split, drawn at random from
    ``seed`` once (the same images every epoch); the test split is always whole.
    """
    train_images, train_labels = training_part(*source.load("train"), train_fraction, seed)
    test_images, test_labels = source.load("test")
    common = dict(device=device, channels_last=channels_last)
    train_loader = TensorLoader(
        train_images, train_labels, batch_size, shuffle=True, augment=augment, seed=seed, **common
    )
    test_loader = TensorLoader(
        test_images, test_labels, test_batch_size or max(batch_size, 500), **common
    )
    return train_loader, test_loader


REPORT_MEAN = REPORT_STD = (0.5, 0.5, 0.5)  # what the report normalised with


def report_transform() -> transforms.Compose:
    """The report's per-image transform: PIL -> tensor in [0, 1] -> [-1, 1]."""
    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(REPORT_MEAN, REPORT_STD)]
    )


def report_loaders(
    root: str | os.PathLike, batch_size: int = 64, verify: bool = True, num_workers: int = 0
) -> tuple[torch.utils.data.DataLoader, ...]:
    """The report's pipeline: our safe ``CIFAR10`` dataset, per-sample transforms, a DataLoader."""
    check_int("batch_size", batch_size, minimum=1)
    loaders = []
    for train in (True, False):
        dataset = CIFAR10(root, train=train, transform=report_transform(), verify=verify)
        loaders.append(
            torch.utils.data.DataLoader(
                dataset, batch_size=batch_size, shuffle=train, num_workers=num_workers
            )
        )
    return tuple(loaders)


def forever(loader):
    """Batches from ``loader`` without end: a new pass whenever one ends."""
    while True:
        yield from loader
