"""Decoy MNIST (Ross et al. 2017, "Right for the right reasons"): a ground truth for attributions.

Every embedded digit gets a small square swatch in one of its four corners, the corner drawn at random per
image and the grey level a function of the label. The test split follows the same rule, so a classifier
that learned the swatch relies on it there too: the deciding evidence is known pixel by pixel, and
`ground_truth_masks("test")` returns it (True on the swatch) for the localisation metrics.

Splits are those of `EmbeddedMNISTDataModule` (the masks travel with the images through the same
stratified split); corners come from a generator seeded by `seed`, so the data are deterministic.
"""

from __future__ import annotations

import torch

from ganmex.data.embedded import EmbeddedMNISTDataModule
from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.errors import check_choice

CORNERS = 4  # top-left, top-right, bottom-left, bottom-right
# digit: the label is the digit's and the swatch repeats it (Ross et al.): a classifier may use either,
# and a CNN trained on these mostly reads the digit (scripts/decoy_evidence.py: repainting the swatch moves
# 1.4% of predictions). swatch: labels are shuffled across images and the swatch encodes the new label,
# so the swatch is the only evidence and the ground truth holds for any classifier that fits the data.
LABEL_SOURCES = ("digit", "swatch")
UINT8_MAX = 255


class MaskedImageTensorDataset(ImageTensorDataset):
    """An image dataset with one bool (H, W) ground-truth mask per image; items stay (image, label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, transform=None):
        super().__init__(images, labels, transform)
        if masks.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(f"masks {tuple(masks.shape)} must be (N, H, W) for images {tuple(images.shape)}")
        self.masks = masks.bool()

    def subset(self, indices: torch.Tensor, transform=None) -> MaskedImageTensorDataset:
        return MaskedImageTensorDataset(
            self.images[indices], self.labels[indices], self.masks[indices], transform
        )


def swatch_shades(num_classes: int, shade_low: float, shade_high: float) -> torch.Tensor:
    """(K,) grey level of each class's swatch in [0, 1]: class 0 the brightest, evenly spaced down."""
    if not 0.0 <= shade_low < shade_high <= 1.0:
        raise ValueError(
            f"decoy shades must satisfy 0 <= shade_low < shade_high <= 1, got {shade_low}, {shade_high}"
        )
    return torch.linspace(shade_high, shade_low, num_classes)


def add_swatches(
    images: torch.Tensor, labels: torch.Tensor, shades: torch.Tensor, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies of uint8 (N, C, H, W) images with a size x size swatch of shades[label] in a random corner
    per image, and the (N, H, W) bool masks of the swatch pixels."""
    n, _, h, w = images.shape
    if not 1 <= size <= min(h, w) // 2:
        raise ValueError(
            f"dataset.swatch_size={size} must be between 1 and {min(h, w) // 2} for {h}x{w} images"
        )
    corner = torch.randint(0, CORNERS, (n,), generator=torch.Generator().manual_seed(seed))
    top = torch.where(corner // 2 == 0, 0, h - size)
    left = torch.where(corner % 2 == 0, 0, w - size)
    rows = torch.arange(h).view(1, -1, 1)
    cols = torch.arange(w).view(1, 1, -1)
    masks = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + size).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + size).view(-1, 1, 1))
    )
    value = (shades[labels] * UINT8_MAX).round().to(images.dtype).view(-1, 1, 1, 1)
    out = torch.where(masks.unsqueeze(1), value, images)
    return out, masks


class DecoyMNISTDataModule(EmbeddedMNISTDataModule):
    """The embedded digits with a class-coded corner swatch (see the module docstring)."""

    name = "decoy_mnist"

    def __init__(
        self,
        swatch_size: int = 4,
        shade_low: float = 0.1,
        shade_high: float = 1.0,
        labels: str = "digit",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("dataset.labels", labels, LABEL_SOURCES)
        self.swatch_size = int(swatch_size)
        self.shades = swatch_shades(self.num_classes, shade_low, shade_high)
        self.label_source = labels

    def load_all(self) -> MaskedImageTensorDataset:
        plain = super().load_all()
        labels = plain.labels
        if self.label_source == "swatch":  # a seeded shuffle: classes stay balanced, the digit says nothing
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
            labels = labels[order]
        images, masks = add_swatches(plain.images, labels, self.shades, self.swatch_size, self.seed)
        return MaskedImageTensorDataset(images, labels, masks)

    def ground_truth_masks(self, split: str) -> torch.Tensor:
        """(N, H, W) bool masks of the swatch pixels, indexed like `dataset(split)`."""
        return self.dataset(split).masks
