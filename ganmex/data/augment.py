"""Augmentations that transform a whole batch in one call.

torchvision's v2 transforms run once per image inside the data loader: on a CPU that trains small
networks, 80 digits through `v2.RandomAffine` cost about as much as a tenth of a GAN step, on the
training loop's critical path. A batch transform draws each image's own parameters, as the per-image
transform does, and resamples the whole batch with one `grid_sample`.

A dataset config lists batch transforms in `augment` after its per-image ones; the train loader
applies them to each collated batch (`AugmentingCollate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import default_collate

from ganmex.errors import ConfigError


class BatchAugmentation(nn.Module):
    """Marks a transform that takes an (N, C, H, W) batch and draws parameters per image."""


class BatchRandomAffine(BatchAugmentation):
    """`torchvision.transforms.v2.RandomAffine(degrees, translate, scale)` for a batch: per image, an
    angle uniform in [-degrees, degrees], a shift of whole pixels uniform within `translate` x the
    side, a scale uniform in `scale`, about the image centre; nearest-neighbour sampling, zero fill
    (v2's defaults)."""

    def __init__(
        self,
        degrees: float,
        translate: Sequence[float] = (0.0, 0.0),
        scale: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        if degrees < 0:
            raise ValueError(f"BatchRandomAffine degrees={degrees} must be >= 0")
        if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
            raise ValueError(f"BatchRandomAffine translate={list(translate)} must be two fractions in [0, 1]")
        if len(scale) != 2 or not 0.0 < scale[0] <= scale[1]:
            raise ValueError(
                f"BatchRandomAffine scale={list(scale)} must be [low, high] with 0 < low <= high"
            )
        self.degrees = float(degrees)
        self.translate = (float(translate[0]), float(translate[1]))
        self.scale = (float(scale[0]), float(scale[1]))

    def draw(self, n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image angle (radians), shift (whole pixels, x then y) and scale."""
        angle = torch.empty(n).uniform_(-self.degrees, self.degrees) * (math.pi / 180.0)
        max_shift = torch.tensor([self.translate[0] * width, self.translate[1] * height])
        shift = torch.round((torch.rand(n, 2) * 2.0 - 1.0) * max_shift)
        scale = torch.empty(n).uniform_(*self.scale)
        return angle, shift, scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(
                f"BatchRandomAffine takes an (N, C, H, W) batch, got shape {tuple(images.shape)}"
            )
        n, _, height, width = images.shape
        return affine_batch(images, *self.draw(n, height, width))


def affine_batch(
    images: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Each image rotated by its angle (radians), scaled and shifted (pixels) about the centre."""
    height, width = images.shape[-2:]
    theta = affine_sampling_grid_theta(angle, shift, scale, height, width)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def affine_sampling_grid_theta(
    angle: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """(N, 2, 3) matrices for `F.affine_grid`: for each output pixel, where to read in the input.

    The forward map turns by `angle` (counter-clockwise on screen), scales by `scale` about the centre,
    then shifts by `shift` pixels; sampling needs its inverse, p_in = R^-1 (p_out - shift) / scale,
    written in the normalised coordinates of `align_corners=False` (x_n = 2 x_c / width), as
    torchvision's `affine` does."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # in pixel coordinates (y down), undoing a counter-clockwise turn on screen is [[cos, sin], [-sin,
    # cos]]; the normalised coordinates stretch x by 2 / width and y by 2 / height, which scales the
    # off-diagonal terms by height / width and its inverse
    aspect = height / width
    theta = torch.empty(len(angle), 2, 3)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = sin * aspect
    theta[:, 1, 0] = -sin / aspect
    theta[:, 1, 1] = cos
    shift_n = shift * torch.tensor([2.0 / width, 2.0 / height])
    theta[:, :, 2] = -torch.einsum("nij,nj->ni", theta[:, :, :2], shift_n)
    return theta


def split_augmentations(
    augment: Sequence[nn.Module],
) -> tuple[list[nn.Module], list[BatchAugmentation]]:
    """The per-image transforms and the batch ones of a dataset's `augment` list, in their order.

    Batch transforms run after collation, so they must come last in the list."""
    first_batch = next((i for i, m in enumerate(augment) if isinstance(m, BatchAugmentation)), len(augment))
    per_batch = list(augment[first_batch:])
    late = [type(m).__name__ for m in per_batch if not isinstance(m, BatchAugmentation)]
    if late:
        raise ConfigError(
            f"dataset.augment lists {', '.join(late)} after a batch transform "
            f"({type(per_batch[0]).__name__}); batch transforms run on collated batches, so "
            f"list them after every per-image transform"
        )
    return list(augment[:first_batch]), per_batch


class AugmentingCollate:
    """The default collation, then the batch transforms on the images (a class: picklable for workers)."""

    def __init__(self, transforms: Sequence[BatchAugmentation]) -> None:
        self.transforms = list(transforms)

    def __call__(self, items):
        images, labels = default_collate(items)
        for transform in self.transforms:
            images = transform(images)
        return images, labels
