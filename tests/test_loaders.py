"""The fast tensor pipeline and the report's per-sample pipeline."""

import pytest
import torch
import torch.nn.functional as F

from labutils import data, loaders, sources


@pytest.fixture(scope="module")
def split(synthetic_root):
    return data.load_cifar10(synthetic_root, "train", verify=False)


def all_labels(loader):
    return torch.cat([labels for _, labels in loader])


def test_batches_look_like_a_dataloaders(split):
    loader = loaders.TensorLoader(*split, batch_size=64)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    images, labels = batches[0]
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    assert batches[-1][0].shape[0] == 200 - 3 * 64


def test_drop_last_drops_the_short_batch(split):
    loader = loaders.TensorLoader(*split, batch_size=64, drop_last=True)
    assert len(loader) == len(list(loader)) == 3


def test_an_epoch_visits_every_image_once_in_a_new_order(split):
    loader = loaders.TensorLoader(*split, batch_size=50, shuffle=True, seed=1)
    first, second = all_labels(loader), all_labels(loader)
    assert sorted(first.tolist()) == sorted(split[1].tolist())
    assert not torch.equal(first, second)


def test_set_epoch_reproduces_order_and_augmentation_exactly(split):
    loader = loaders.TensorLoader(*split, batch_size=50, shuffle=True, augment=True, seed=3)
    loader.set_epoch(7)
    first = [images for images, _ in loader]
    loader.set_epoch(7)
    again = [images for images, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other_seed = loaders.TensorLoader(*split, batch_size=50, shuffle=True, augment=True, seed=4)
    other_seed.set_epoch(7)
    assert not torch.equal(next(iter(other_seed))[0], first[0])


def test_normalisation_uses_the_cifar10_mean_and_std(split):
    loader = loaders.TensorLoader(*split, batch_size=10)
    images, _ = next(iter(loader))
    raw = torch.as_tensor(split[0][:10]).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(data.MEAN)[:, None, None]
    std = torch.tensor(data.STD)[:, None, None]
    assert torch.allclose(images, (raw - mean) / std, atol=1e-5)


def test_unnormalize_inverts_the_loaders_normalisation(split):
    images, _ = next(iter(loaders.TensorLoader(*split, batch_size=16)))
    restored = loaders.unnormalize(images)
    assert restored.shape == (16, 32, 32, 3)
    expected = torch.as_tensor(split[0][:16]).float() / 255
    assert (restored - expected).abs().max() <= 1 / 255


def test_unnormalize_clamps_to_the_displayable_range():
    restored = loaders.unnormalize(torch.full((1, 3, 2, 2), 100.0))
    assert restored.max() == 1.0 and restored.min() == 1.0


def test_random_crop_equals_reflection_padding_then_a_window():
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    cropped = loaders.random_crop(images, 4, torch.Generator().manual_seed(0))
    offsets = torch.randint(-4, 5, (2, 6), generator=torch.Generator().manual_seed(0)) + 4
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (4, 4, 4, 4), mode="reflect")
    for index, (top, left) in enumerate(offsets.T.tolist()):
        window = padded[index, :, top : top + 32, left : left + 32].permute(1, 2, 0)
        assert torch.equal(window.to(torch.uint8), cropped[index])


def test_random_flip_mirrors_about_half_the_images():
    images = torch.randint(0, 256, (400, 32, 32, 3), dtype=torch.uint8)
    flipped = loaders.random_flip(images, torch.Generator().manual_seed(0))
    mirrored = torch.tensor([torch.equal(a, b.flip(1)) for a, b in zip(flipped, images)])
    unchanged = torch.tensor([torch.equal(a, b) for a, b in zip(flipped, images)])
    assert torch.all(mirrored | unchanged) and 150 < int(mirrored.sum()) < 250


def test_channels_last_is_optional(split):
    plain = next(iter(loaders.TensorLoader(*split, batch_size=8)))[0]
    last = next(iter(loaders.TensorLoader(*split, batch_size=8, channels_last=True)))[0]
    assert plain.is_contiguous()
    assert last.is_contiguous(memory_format=torch.channels_last) and torch.equal(plain, last)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "64", True])
def test_a_bad_batch_size_is_named(split, batch_size):
    with pytest.raises(ValueError, match="batch_size = .* is not valid: use a whole number >= 1"):
        loaders.TensorLoader(*split, batch_size=batch_size)


def test_mismatched_images_and_labels_are_refused(split):
    with pytest.raises(ValueError, match="expected images"):
        loaders.TensorLoader(split[0], split[1][:5], batch_size=8)


def test_make_loaders_gives_an_augmented_train_loader_and_a_plain_test_loader(synthetic_root):
    source = sources.DataSource("synthetic", synthetic_root, verified=False)
    train_loader, test_loader = loaders.make_loaders(source, batch_size=32, seed=0)
    assert train_loader.shuffle and train_loader.augment
    assert not test_loader.shuffle and not test_loader.augment
    assert train_loader.num_images == 200 and test_loader.num_images == 50


def test_report_pipeline_yields_batches_in_minus_one_to_one(synthetic_root):
    train_loader, test_loader = loaders.report_loaders(synthetic_root, batch_size=64, verify=False)
    images, labels = next(iter(train_loader))
    assert images.shape == (64, 3, 32, 32) and labels.shape == (64,)
    assert images.min() >= -1 and images.max() <= 1
    assert len(test_loader.dataset) == 50
