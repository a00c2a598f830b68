"""The networks: shapes, parameter counts worked out by hand, the residual block, lookup by name."""

import pytest
import torch
import torch.nn.functional as F

from labutils import models


def conv_bn_parameters(in_channels, out_channels, bias=True):
    """A 3x3 convolution followed by batch norm (one scale and one shift per channel)."""
    return in_channels * out_channels * 9 + (out_channels if bias else 0) + 2 * out_channels


def linear_parameters(size_in, size_out):
    return size_in * size_out + size_out


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.randn(4, 3, 32, 32)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_every_model_maps_a_batch_of_images_to_ten_logits(name, images):
    logits = models.build_model(name)(images)
    assert logits.shape == (4, 10)


def test_mlp_parameter_count_matches_its_layer_sizes():
    expected = (
        linear_parameters(3072, 512)
        + linear_parameters(512, 256)
        + linear_parameters(256, 128)
        + linear_parameters(128, 10)
    )
    assert models.count_parameters(models.MLP()) == expected


def test_cnn_parameter_count_matches_its_layer_sizes():
    expected = (
        conv_bn_parameters(3, 64, bias=False)
        + 2 * conv_bn_parameters(64, 64)
        + linear_parameters(64 * 16 * 16, 64)
        + linear_parameters(64, 10)
    )
    assert models.count_parameters(models.CNN()) == expected


def test_resnet9_parameter_count_matches_its_layer_sizes():
    convolutions = [
        (3, 64),
        (64, 128),
        (128, 128),
        (128, 128),
        (128, 256),
        (256, 512),
        (512, 512),
        (512, 512),
    ]
    expected = (
        sum(conv_bn_parameters(i, o) for i, o in convolutions)
        + linear_parameters(512, 128)
        + linear_parameters(128, 10)
    )
    assert models.count_parameters(models.ResNet9()) == expected


def test_count_parameters_skips_frozen_parameters():
    model = models.MLP(hidden=(8,))
    model.layers[1].weight.requires_grad_(False)
    assert models.count_parameters(model) == 8 + linear_parameters(8, 10)


def test_mlp_hidden_sizes_and_classes_can_be_chosen(images):
    model = models.MLP(num_classes=5, hidden=(32, 16))
    assert model(images).shape == (4, 5)
    assert models.count_parameters(model) == (
        linear_parameters(3072, 32) + linear_parameters(32, 16) + linear_parameters(16, 5)
    )


def test_mlp_gives_the_same_logits_for_channels_last_images(images):
    model = models.MLP().eval()
    channels_last = images.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(channels_last), model(images))


def test_residual_block_adds_its_input_before_the_final_relu(images):
    block = models.ResidualBlock(3).eval()
    with torch.no_grad():  # silence the residual branch: what is left is the skip connection
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    assert torch.equal(block(images), torch.relu(images))


def test_residual_block_matches_the_formula_written_with_torch_functions(images):
    block = models.ResidualBlock(3).eval()
    with torch.no_grad():
        for bn in (block.bn1, block.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)

    def conv_bn(x, conv, bn):
        x = F.conv2d(x, conv.weight, padding=1)
        return F.batch_norm(
            x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps
        )

    hidden = torch.relu(conv_bn(images, block.conv1, block.bn1))
    expected = torch.relu(images + conv_bn(hidden, block.conv2, block.bn2))
    torch.testing.assert_close(block(images), expected)


def test_residual_block_keeps_the_shape_of_its_input():
    assert models.ResidualBlock(16)(torch.randn(2, 16, 8, 8)).shape == (2, 16, 8, 8)


def test_conv_block_halves_the_image_only_when_pooling():
    x = torch.randn(2, 3, 32, 32)
    assert models.conv_block(3, 8)(x).shape == (2, 8, 32, 32)
    assert models.conv_block(3, 8, pool=True)(x).shape == (2, 8, 16, 16)


def test_build_model_ignores_case_and_spaces():
    assert isinstance(models.build_model("ResNet9"), models.ResNet9)
    assert isinstance(models.build_model(" CNN "), models.CNN)
    assert isinstance(models.build_model("mlp"), models.MLP)


def test_build_model_passes_keyword_arguments_on(images):
    assert models.build_model("cnn", num_classes=3)(images).shape == (4, 3)


def test_build_model_names_the_valid_choices_for_an_unknown_name():
    with pytest.raises(ValueError, match="vgg16") as error:
        models.build_model("vgg16")
    for name in models.MODEL_NAMES:
        assert name in str(error.value)


def test_the_networks_are_built_for_the_files_data_reads():
    from labutils import data

    assert len(data.CLASSES) == models.NUM_CLASSES
    assert models.IMAGE_SIZE == data.IMAGE_SIZE
