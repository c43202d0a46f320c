"""Small tensor helpers every layer shares: class-label coercion, a Gaussian blur, colour projection."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# a Gaussian kernel is cut at this many standard deviations
BLUR_TRUNCATE = 3.0


def as_labels(
    labels: Tensor | int | None, n: int, device: torch.device | str, name: str, optional: bool = False
) -> Tensor | None:
    """Class indices as an (n,) long tensor on `device`; one int (or 0-d tensor) is broadcast to every
    example. Integral floats are accepted; 2.7 is refused rather than silently truncated."""
    if labels is None:
        if optional:
            return None
        raise ValueError(f"{name} is required: pass an int or {n} class indices (one per image)")
    values = torch.as_tensor(labels, device=device)
    if values.is_floating_point() and not torch.equal(values, values.round()):
        raise ValueError(f"{name} must hold integer class indices, got {values.flatten()[:8].tolist()}")
    values = values.long()
    if values.ndim == 0:
        values = values.expand(n)
    if values.shape != (n,):
        raise ValueError(
            f"{name} must be an int or {n} class indices (one per image), got shape {tuple(values.shape)}"
        )
    return values


def gaussian_kernel1d(sigma: float, radius: int, device=None, dtype=torch.float32) -> Tensor:
    """Normalised samples of exp(-t^2 / 2 sigma^2) at the integer offsets -radius .. radius."""
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def blur_radius(sigma: float, height: int, width: int, truncate: float = BLUR_TRUNCATE) -> int:
    """ceil(truncate * sigma), clipped so that reflect padding fits the image."""
    return max(0, min(math.ceil(truncate * sigma), height - 1, width - 1))


def gaussian_blur(x: Tensor, sigma: float, radius: int | None = None, padding: str = "reflect") -> Tensor:
    """Separable Gaussian blur of an (N, C, H, W) batch, channel by channel, padded by `padding`
    (reflect for baselines and in-fills; replicate for the Quantus-style perturbation reference).

    `radius` None covers +-3 sigma, clipped to the image; an explicit radius must be < H and < W."""
    if sigma <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    n, c, h, w = x.shape
    if radius is None:
        radius = blur_radius(sigma, h, w)
    if radius >= min(h, w):
        raise ValueError(
            f"blur radius {radius} (kernel size {2 * radius + 1}) is too large for {h}x{w} images; "
            f"use a kernel size below {2 * min(h, w)}"
        )
    kernel = gaussian_kernel1d(sigma, radius, x.device, x.dtype)
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode=padding), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode=padding), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def keep_colour(images01: Tensor, edited01: Tensor, eps: float = 1e-8) -> Tensor:
    """`edited01` with each pixel's change reduced to its component along the image's own colour.

    An image's colour is its pixel values summed over the image (a C-vector), normalised. At every
    pixel the change edited - image is projected on that direction: more or less of the image's own
    hue (drawing or erasing its strokes) survives, ink of another hue does not. One-channel images
    and black images (no colour to keep) come back unchanged. Both inputs are N x C x H x W in [0, 1].
    """
    if images01.shape != edited01.shape or images01.dim() != 4:
        raise ValueError(
            f"images {tuple(images01.shape)} and edited {tuple(edited01.shape)} must be equal N x C x H x W"
        )
    if images01.shape[1] == 1:
        return edited01
    colour = images01.sum(dim=(2, 3))
    norm = colour.norm(dim=1, keepdim=True)
    unit = (colour / norm.clamp_min(eps))[:, :, None, None]
    change = edited01 - images01
    kept = images01 + (change * unit).sum(dim=1, keepdim=True) * unit
    black = (norm < eps)[:, :, None, None]
    return torch.where(black, edited01, kept)
