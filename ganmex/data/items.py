"""torchvision-style `(image, label)` items as the uint8 NCHW images every ganmex dataset holds.

A user's `Dataset` may return PIL images, tensors (HW or CHW; uint8, or float in [0, 1] as `ToTensor`
gives) or numpy arrays (HW or HWC), read as torchvision's `ToImage` reads them. Normalised floats are
refused: ganmex models normalise with `dataset.mean`/`dataset.std` themselves, so a second
normalisation would silently train on other pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import functional as F

from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.errors import ConfigError
from ganmex.models.inputs import as_pixels

READS = "PIL images, HW/CHW tensors and HW/HWC numpy arrays are read as torchvision's ToImage reads them"


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """`image` (C, H, W) resized to size x size with antialiasing (untouched when it already is)."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    return F.resize(image, [size, size], antialias=True)


def image_uint8(image: object, size: int) -> torch.Tensor:
    """One item's image as uint8 (C, size, size); ValueError saying what is wrong with it."""
    try:
        tensor = F.to_image(image).as_subclass(torch.Tensor)
    except (TypeError, ValueError) as error:
        raise ValueError(f"its image is a {type(image).__name__} ({error}); {READS}") from None
    if tensor.dtype != torch.uint8:
        tensor = F.to_dtype(as_pixels(tensor.unsqueeze(0), "its image")[0], torch.uint8, scale=True)
    return resize_square(tensor, size)


def class_index(label: object) -> int:
    """One item's label as a class index: an int, a numpy integer or a one-element integer tensor."""
    value = torch.as_tensor(label)
    if value.numel() != 1 or value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        shown = value.flatten()[:4].tolist()
        raise ValueError(f"its label {shown} (dtype {value.dtype}) is not a class index; return an int label")
    return int(value)


def load_items(dataset: Sequence, size: int, channels: int, where: str) -> ImageTensorDataset:
    """Every item of `dataset` as uint8 NCHW at `size` with int labels; a ConfigError naming the item,
    `where` it came from and the fix when an item cannot be read or has another channel count."""
    if len(dataset) == 0:
        raise ConfigError(f"{where} holds no items; check its arguments (root, split)")
    images, labels = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        try:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise ValueError(f"it is a {type(item).__name__}, not an (image, label) pair")
            image, label = image_uint8(item[0], size), class_index(item[1])
        except ValueError as error:
            raise ConfigError(f"item {index} of {where} cannot be used: {error}") from None
        if image.shape[0] != channels:
            mixed = f", or make every item {channels}-channel (e.g. PIL .convert())" if index else ""
            raise ConfigError(
                f"dataset.channels={channels} but item {index} of {where} is a {image.shape[0]}-channel "
                f"image ({READS}); set dataset.channels={image.shape[0]}{mixed}"
            )
        images.append(image)
        labels.append(label)
    return ImageTensorDataset(torch.stack(images), torch.tensor(labels))
