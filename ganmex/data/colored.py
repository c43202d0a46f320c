"""Coloured MNIST as in the GANMEX repo: each digit drawn into the R, G or B channel picked by its pixels.

The channel is (integer pixel sum) mod 3 over the digit's 0-255 values; the other two channels stay zero.
The rule is deterministic, so the same digit is always the same colour: the colour is a nuisance
feature a classifier may or may not use, and a counterfactual must keep it.
"""

from __future__ import annotations

import torch

from ganmex.data.embedded import EmbeddedMNISTDataModule
from ganmex.data.tensor_dataset import ImageTensorDataset

COLOR_CHANNELS = 3
PIXEL_MAX = 255  # the integer scale the rule's pixel sum is taken on


def color_channel(images: torch.Tensor) -> torch.Tensor:
    """(N,) long: which channel (0 = R, 1 = G, 2 = B) each grey digit goes to, = pixel sum mod 3.

    `images` are (N, 1, H, W) uint8 in [0, 255] or float in [0, 1] (scaled back and rounded to integers).
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"color_channel expects grey images N x 1 x H x W, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        ints = images.long()
    else:
        ints = torch.round(images.double() * PIXEL_MAX).long()
    return ints.flatten(1).sum(1) % COLOR_CHANNELS


def colorize(images: torch.Tensor) -> torch.Tensor:
    """Grey digits (N, 1, H, W) -> (N, 3, H, W) of the same dtype, the digit in channel `color_channel`."""
    channel = color_channel(images)
    out = images.new_zeros((images.shape[0], COLOR_CHANNELS, *images.shape[2:]))
    out[torch.arange(images.shape[0]), channel] = images[:, 0]
    return out


class ColoredMNISTDataModule(EmbeddedMNISTDataModule):
    """The embedded 5,000 digits, coloured by `colorize`; same stratified splits as mnist_embedded."""

    name = "mnist_colored"

    def load_all(self) -> ImageTensorDataset:
        grey = super().load_all()
        return ImageTensorDataset(colorize(grey.images), grey.labels)
