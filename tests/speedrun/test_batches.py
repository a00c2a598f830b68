"""The speed track's data path (``labutils.speedrun.batches``): alternating flips, and test-time
augmentation checked against views built by explicit indexing."""

import torch
from torch import nn

from labutils.speedrun import batches, network


def random_images(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 32, 32, 3), dtype=torch.uint8, generator=generator)


# --------------------------------------------------------------------------- training data


def test_odd_epochs_flip_exactly_the_images_the_even_epochs_did_not(monkeypatch):
    monkeypatch.setattr(batches, "TRANSLATE", 0)  # no shifts: each image comes back as it was
    images, labels = random_images(40), torch.arange(40)  # the label says which image it is
    data = batches.SpeedData(images, labels, images[:1], labels[:1])
    generator = torch.Generator().manual_seed(1)
    first_flips = torch.rand(40, generator=generator) < 0.5
    originals = batches.to_network_input(images, channels_last=False)
    flipped_by_epoch = []
    for epoch in (0, 1, 2):
        flipped = torch.zeros(40, dtype=torch.bool)
        for batch, index in batches.train_batches(data, 8, epoch, first_flips, generator, False):
            for image, i in zip(batch, index):
                assert torch.equal(image, originals[i]) or torch.equal(image, originals[i].flip(-1))
                flipped[i] = torch.equal(image, originals[i].flip(-1))
        flipped_by_epoch.append(flipped)
    assert torch.equal(flipped_by_epoch[0], first_flips)
    assert torch.equal(flipped_by_epoch[1], ~flipped_by_epoch[0])
    assert torch.equal(flipped_by_epoch[2], flipped_by_epoch[0])


# --------------------------------------------------------------------------- evaluation


def shifted(images, rows_and_columns):
    """Images moved by explicit indexing (edges mirrored): an independent reference for TTA."""
    index = torch.tensor(rows_and_columns)
    return images[:, :, index][:, :, :, index]


def test_tta_averages_mirrored_and_shifted_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)).eval()
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():

        def mirrored(x):
            return 0.5 * model(x) + 0.5 * model(x.flip(-1))

        down_right = shifted(images, [1] + list(range(31)))  # pixel i shows pixel i - 1
        up_left = shifted(images, list(range(1, 32)) + [30])  # pixel i shows pixel i + 1
        expected = 0.5 * mirrored(images) + 0.25 * (mirrored(down_right) + mirrored(up_left))
        assert torch.allclose(batches.tta_logits(model, images, 0), model(images))
        assert torch.allclose(batches.tta_logits(model, images, 1), mirrored(images))
        assert torch.allclose(batches.tta_logits(model, images, 2), expected, atol=1e-5)


def test_predict_gives_one_row_per_image_in_any_batch_size():
    torch.manual_seed(0)
    model = network.SpeedNet().eval()
    images = random_images(7)
    logits = batches.predict(model, images, tta_level=2, batch_size=3)
    assert logits.shape == (7, 10)
    with torch.no_grad():
        expected = batches.tta_logits(model, batches.to_network_input(images, False), 2)
    assert torch.allclose(logits, expected, atol=1e-5)
