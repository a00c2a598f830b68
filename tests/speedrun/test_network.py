"""airbench94's network (``labutils.speedrun.network``): the whitening layer checked against its
definition, on synthetic files, and against torch's own patch extraction."""

import pytest
import torch
import torch.nn.functional as F

from labutils import data, sources
from labutils.speedrun import batches, network

TRAIN_PER_CLASS, TEST_PER_CLASS = 60, 20


@pytest.fixture(scope="module")
def speed_data(tmp_path_factory):
    """Synthetic files in the official format (600 training and 200 test images), as tensors."""
    root = tmp_path_factory.mktemp("speednet")
    data.write_synthetic_cifar10(root, TRAIN_PER_CLASS, TEST_PER_CLASS, seed=0)
    return batches.load_data(sources.DataSource("synthetic", root, verified=False))


def test_whitening_layer_makes_its_patches_uncorrelated_with_unit_variance(speed_data):
    images = batches.to_network_input(speed_data.train_images[:200], channels_last=False)
    layer = network.SpeedNet().whiten
    network.init_whitening(layer, images)
    outputs = F.conv2d(images, layer.weight)  # every 2x2 patch, without the bias
    outputs = outputs.permute(0, 2, 3, 1).reshape(-1, layer.out_channels).double()
    half = layer.out_channels // 2
    assert torch.allclose(outputs[:, half:], -outputs[:, :half])  # the ± copies
    second_moment = outputs[:, :half].T @ outputs[:, :half] / len(outputs)
    assert torch.allclose(second_moment, torch.eye(half, dtype=torch.float64), atol=0.01)
    assert not layer.weight.requires_grad


def test_patch_second_moment_matches_torch_unfold():
    images = torch.randn(4, 3, 8, 8)
    patches = F.unfold(images, kernel_size=2).transpose(1, 2).reshape(-1, 12).double()
    expected = patches.T @ patches / len(patches)
    assert torch.allclose(network.patch_second_moment(images, chunk=3), expected)
