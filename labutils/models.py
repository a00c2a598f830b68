"""The lab's networks: an MLP, a small CNN and ResNet9, each built from small named blocks.

Every model takes a batch of normalised CIFAR-10 images ``[B, 3, 32, 32]`` and returns logits
``[B, 10]``. ``build_model(name)`` makes one by name, so notebooks, the command line and saved
checkpoints all agree on what "cnn" means.

The attribute names and ``nn.Sequential`` layouts are part of the interface, not a detail:
saved checkpoints are keyed by them, and notebook 02's checks load these models' weights into
the networks students write, which lay out their layers the same way.
"""

from __future__ import annotations

from torch import Tensor, nn

# What the networks are built for. data.py states the same facts about the files; models stays a
# leaf that imports no data code (no torchvision datasets, no PIL), and tests/test_models.py
# checks that the two agree.
NUM_CLASSES = 10
IMAGE_SIZE = 32
IN_CHANNELS = 3  # red, green, blue


# --------------------------------------------------------------------------- MLP


class MLP(nn.Module):
    """A multi-layer perceptron: the image flattened to 3072 numbers, then linear layers."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        hidden: tuple[int, ...] = (512, 256, 128),
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        sizes = [IN_CHANNELS * IMAGE_SIZE * IMAGE_SIZE, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for size_in, size_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(size_in, size_out), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(dropout), nn.Linear(sizes[-1], num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


# --------------------------------------------------------------------------- CNN


def conv_bn_relu(in_channels: int, out_channels: int, bias: bool = True) -> nn.Sequential:
    """A 3x3 convolution that keeps the image size, then batch normalisation and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CNN(nn.Module):
    """The report's CNN: three conv-BN-ReLU blocks, 2x2 average pooling, two linear layers.

    The report's listing puts the comment "Residual block" over the second and third blocks,
    but nothing adds their input back: this is a plain stack, with no skip connection.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        pooled_size = IMAGE_SIZE // 2
        self.features = nn.Sequential(
            conv_bn_relu(IN_CHANNELS, 64, bias=False),  # the report's first conv had no bias
            conv_bn_relu(64, 64),
            conv_bn_relu(64, 64),
            nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * pooled_size * pooled_size, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, num_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))


# --------------------------------------------------------------------------- residual block


class ResidualBlock(nn.Module):
    """A basic residual block: relu(x + bn(conv(relu(bn(conv(x)))))).

    The report's block applied ReLU twice and added the input after the last ReLU, so its
    residual branch could only add non-negative values and the sum was never rectified. Here
    the input is added first and a single ReLU follows, as in He et al. (2016).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # No conv bias: the batch norm right after it has its own shift.
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        residual = self.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        return self.relu(x + residual)


# --------------------------------------------------------------------------- ResNet9


def conv_block(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    """conv3x3-BN-ReLU, halving the image size with 2x2 max pooling when ``pool`` is True."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ResNet9(nn.Module):
    """The report's ResNet9: four conv blocks, two residual pairs, pooling, two linear layers."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = conv_block(IN_CHANNELS, 64)  # 64 x 32 x 32
        self.conv2 = conv_block(64, 128, pool=True)  # 128 x 16 x 16
        self.res1 = nn.Sequential(conv_block(128, 128), conv_block(128, 128))
        self.conv3 = conv_block(128, 256, pool=True)  # 256 x 8 x 8
        self.conv4 = conv_block(256, 512, pool=True)  # 512 x 4 x 4
        self.res2 = nn.Sequential(conv_block(512, 512), conv_block(512, 512))
        self.classifier = nn.Sequential(
            nn.MaxPool2d(4),  # 512 x 1 x 1
            nn.Flatten(),
            nn.Linear(512, 128),
            nn.Linear(128, num_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        out = self.conv2(self.conv1(images))
        out = self.res1(out) + out  # skip connection
        out = self.conv4(self.conv3(out))
        out = self.res2(out) + out  # skip connection
        return self.classifier(out)


# --------------------------------------------------------------------------- by name

_MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "resnet9": ResNet9}
MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)


def build_model(name: str, **kwargs) -> nn.Module:
    """Make the model called ``name`` (any case), passing ``kwargs`` to its constructor."""
    key = str(name).strip().lower()
    if key not in _MODELS:
        raise ValueError(f"unknown model name {name!r}: choose one of {', '.join(MODEL_NAMES)}.")
    return _MODELS[key](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (weights and biases) in ``model``."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
