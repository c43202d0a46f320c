"""Classifiers to explain. Each maps [0, 1] pixels to logits; normalisation is their first layer.

Every ReLU is its own non-inplace module so DeepLIFT and LRP can hook each use separately.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ganmex.models.inputs import classifier_input


class Normalize(nn.Module):
    """(x - mean) / std as a layer, so callers always work in pixel space."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """normalize -> body (penultimate features) -> head (logits).

    `features(x)` exposes the penultimate layer, used for FID/KID in the classifier's own space.
    """

    def __init__(self, normalize: Normalize, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for pixels x (N, C, H, W) in [0, 1]; uint8 is divided by 255. In eval mode (every
        loaded classifier) floats outside [0, 1], e.g. 0..255 or [-1, 1], raise ValueError; methods that add
        noise on purpose widen the range with `models.inputs.noisy_inputs` (`models.inputs`)."""
        return self.head(self.features(classifier_input(x, self.training)))


def _flat_size(module: nn.Module, channels: int, image_size: int) -> int:
    with torch.no_grad():
        return module(torch.zeros(1, channels, image_size, image_size)).flatten(1).shape[1]


def _check_size(image_size: int, minimum: int, arch: str) -> None:
    if image_size < minimum:
        raise ValueError(
            f"image size {image_size} is too small for classifier={arch} (needs >= {minimum}); "
            f"choose a larger dataset.image_size or another classifier"
        )


def mnist_cnn(
    channels: int,
    num_classes: int,
    image_size: int,
    mean,
    std,
    width: int = 32,
    hidden: int = 256,
    kernel_size: int = 6,
    dropout: float = 0.5,
) -> Classifier:
    """GANMEX's MNIST net: conv 32 k6 s2 -> conv 64 k6 s2 -> dense 256 -> dropout -> logits."""
    _check_size(image_size, 8, "mnist_cnn")
    pad = (kernel_size - 2) // 2
    conv = nn.Sequential(
        nn.Conv2d(channels, width, kernel_size, stride=2, padding=pad),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, kernel_size, stride=2, padding=pad),
        nn.ReLU(),
        nn.Flatten(),
    )
    body = nn.Sequential(
        *conv, nn.Linear(_flat_size(conv, channels, image_size), hidden), nn.ReLU(), nn.Dropout(dropout)
    )
    return Classifier(Normalize(mean, std), body, nn.Linear(hidden, num_classes))


def svhn_cnn(
    channels: int,
    num_classes: int,
    image_size: int,
    mean,
    std,
    width: int = 32,
    hidden: int = 256,
    dropout: float = 0.5,
) -> Classifier:
    """Three conv blocks (conv-relu-conv-relu-maxpool) and a dense layer; street-number digits."""
    _check_size(image_size, 8, "svhn_cnn")
    layers: list[nn.Module] = []
    in_ch = channels
    for out_ch in (width, 2 * width, 4 * width):
        layers += [
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        in_ch = out_ch
    conv = nn.Sequential(*layers, nn.Flatten())
    body = nn.Sequential(
        *conv,
        nn.Dropout(dropout),
        nn.Linear(_flat_size(conv, channels, image_size), hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
    )
    return Classifier(Normalize(mean, std), body, nn.Linear(hidden, num_classes))


def cifar_cnn(
    channels: int,
    num_classes: int,
    image_size: int,
    mean,
    std,
    widths: Sequence[int] = (64, 128, 256),
    hidden: int = 512,
    dropout: float = 0.3,
) -> Classifier:
    """VGG-style: per stage two conv-BN-ReLU then max-pool; global average pooling then dense."""
    _check_size(image_size, 2 ** len(widths), "cifar_cnn")
    layers: list[nn.Module] = []
    in_ch = channels
    for out_ch in widths:
        for _ in range(2):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU()]
            in_ch = out_ch
        layers.append(nn.MaxPool2d(2))
    body = nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(in_ch, hidden),
        nn.ReLU(),
    )
    return Classifier(Normalize(mean, std), body, nn.Linear(hidden, num_classes))


def resnet18(channels: int, num_classes: int, image_size: int, mean, std) -> Classifier:
    """torchvision's ResNet-18 with a 3x3 stem and no max-pool, so 28-32 px inputs keep resolution."""
    import torchvision  # only this architecture needs it

    _check_size(image_size, 8, "resnet18")
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    head = net.fc
    net.fc = nn.Identity()
    return Classifier(Normalize(mean, std), net, head)


class _BNResidual(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity, then ReLU (a ResNet basic block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.body(x))


def mnist_oracle(
    channels: int,
    num_classes: int,
    image_size: int,
    mean,
    std,
    width: int = 16,
    hidden: int = 64,
) -> Classifier:
    """Independent judge of counterfactuals: a small BN residual CNN with global average pooling.

    Deliberately unlike mnist_cnn (3x3 kernels, batch norm, residual blocks, max-pool, no big dense
    layer), so images that merely exploit f's features are not rewarded by it.
    """
    _check_size(image_size, 4, "mnist_oracle")
    layers: list[nn.Module] = [
        nn.Conv2d(channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        _BNResidual(width),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        _BNResidual(2 * width),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, hidden),
        nn.ReLU(),
    ]
    return Classifier(Normalize(mean, std), nn.Sequential(*layers), nn.Linear(hidden, num_classes))
