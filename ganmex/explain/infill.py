"""In-fillers for counterfactual masking: what replaces the pixels a saliency mask removes.

FIDO (Chang et al., ICLR 2019) showed that the in-fill decides what a mask-based saliency map means:
a black or blurred in-fill is itself evidence the classifier reacts to, a generative in-fill keeps the
composite on the data manifold. Every in-filler here answers one call,

    infill(x, mask, source, target) -> mask * x + (1 - mask) * fill,

with `mask` = 1 on observed (kept) pixels, shaped (N, 1, H, W) or like `x`, soft values allowed. The
fill carries no gradient, so optimising a mask never back-propagates through the in-filler. All
tensors are NCHW in [0, 1].
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganmex.tensors import as_labels, gaussian_blur


def check_mask(x: Tensor, mask: Tensor) -> None:
    """A mask must be (N, 1, H, W) or shaped like x: one keep value per pixel (or per channel)."""
    if x.ndim != 4:
        raise ValueError(f"images must be NCHW, got shape {tuple(x.shape)}")
    ok = mask.ndim == 4 and mask.shape[0] == x.shape[0] and mask.shape[2:] == x.shape[2:]
    if not ok or mask.shape[1] not in (1, x.shape[1]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not fit images {tuple(x.shape)}; "
            f"use (N, 1, H, W) or the images' own shape"
        )


class InFiller(ABC):
    """Base class: subclasses say what goes into the removed pixels (`fill`); `infill` composes."""

    name: str = "infiller"
    # True when the fill depends on which pixels are observed, so it must be recomputed per mask sample
    mask_dependent: bool = False
    # True when repeated calls may differ (random in-fill), so it is resampled every optimisation step
    stochastic: bool = False

    @abstractmethod
    def fill(self, x: Tensor, mask: Tensor, source: Tensor | None, target: Tensor | None) -> Tensor:
        """The in-fill image shaped like x, in [0, 1]; only its values where mask < 1 matter."""

    def infill(
        self, x: Tensor, mask: Tensor, source: Tensor | int | None = None, target: Tensor | int | None = None
    ) -> Tensor:
        """x_hat = mask * x + (1 - mask) * fill(x), with no gradient through the fill."""
        check_mask(x, mask)
        source = as_labels(source, x.shape[0], x.device, "source", optional=True)
        target = as_labels(target, x.shape[0], x.device, "target", optional=True)
        with torch.no_grad():
            fill = self.fill(x.detach(), mask.detach(), source, target)
        return mask * x + (1 - mask) * fill

    __call__ = infill

    def impute(self, x: Tensor, removed: Tensor) -> Tensor:
        """The removal-reference interface of the perturbation metrics (as ROAD's imputer): removed pixels
        (True) in-filled, so a deletion curve removes pixels the way the saliency's optimisation did. No
        classes reach the fill: a class-targeted fill (ganmex) is passed to the metrics as its image."""
        return self.infill(x, (~removed).to(x.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConstantInFill(InFiller):
    """FIDO's "mean" in-fill: a constant colour. The default 0 is black (our pixel space's zero); pass the
    dataset mean (`value: ${dataset.mean}`) for the original's zero-in-normalised-space in-fill."""

    name = "mean"

    def __init__(self, value: float | Sequence[float] = 0.0) -> None:
        values = [float(value)] if isinstance(value, int | float) else [float(v) for v in value]
        if not values or any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError(
                f"in-fill value {value!r} must be in [0, 1] (pixel space), one per channel or one"
            )
        self.value = values

    def fill(self, x, mask, source, target):
        value = torch.tensor(self.value, dtype=x.dtype, device=x.device)
        if value.numel() not in (1, x.shape[1]):
            raise ValueError(f"in-fill value has {value.numel()} channels, images have {x.shape[1]}")
        return value.view(1, -1, 1, 1).expand_as(x)

    def __repr__(self) -> str:
        return f"ConstantInFill(value={self.value})"


class BlurInFill(InFiller):
    """The image blurred with a Gaussian (FIDO/BBMP's blur in-fill): removes detail, keeps the colours."""

    name = "blur"

    def __init__(self, sigma: float = 3.0) -> None:
        if sigma <= 0:
            raise ValueError(f"blur sigma={sigma} must be > 0 (pixels)")
        self.sigma = float(sigma)

    def fill(self, x, mask, source, target):
        return gaussian_blur(x, self.sigma)

    def __repr__(self) -> str:
        return f"BlurInFill(sigma={self.sigma})"


class RandomColourInFill(InFiller):
    """FIDO's "random" in-fill: one uniformly random colour per image plus Gaussian pixel noise, clamped
    to [0, 1]; resampled on every call so no single colour becomes evidence."""

    name = "random"
    stochastic = True

    def __init__(self, noise_std: float = 0.2, seed: int | None = None) -> None:
        if noise_std < 0:
            raise ValueError(f"noise_std={noise_std} must be >= 0")
        self.noise_std = float(noise_std)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def fill(self, x, mask, source, target):
        g = self._generator(x.device)
        colour = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=g, device=x.device, dtype=x.dtype)
        noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * self.noise_std
        return (colour + noise).clamp(0, 1)

    def __repr__(self) -> str:
        return f"RandomColourInFill(noise_std={self.noise_std}, seed={self.seed})"


class LocalMeanInFill(InFiller):
    """Each removed pixel takes the mask-weighted mean of the observed pixels in a window around it;
    where the window sees nothing, the image's mean over all observed pixels (black if none)."""

    name = "local_mean"
    mask_dependent = True

    def __init__(self, window: int = 7, eps: float = 1e-3) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"local-mean window={window} must be an odd number of pixels >= 1")
        self.window = int(window)
        self.eps = float(eps)

    def fill(self, x, mask, source, target):
        mask = mask.expand_as(x)
        pad = self.window // 2
        weighted = F.avg_pool2d(mask * x, self.window, stride=1, padding=pad, count_include_pad=True)
        weight = F.avg_pool2d(mask, self.window, stride=1, padding=pad, count_include_pad=True)
        total = mask.sum((2, 3), keepdim=True)
        global_mean = (mask * x).sum((2, 3), keepdim=True) / total.clamp_min(self.eps)
        local = weighted / weight.clamp_min(self.eps)
        return torch.where(weight > self.eps, local, global_mean.expand_as(x)).clamp(0, 1)

    def __repr__(self) -> str:
        return f"LocalMeanInFill(window={self.window})"


class AutoencoderInFill(InFiller):
    """A trained in-painting autoencoder (FIDO's VAE in-filler): it sees the observed pixels with the
    removed ones set to black, exactly as `autoencoder=conv_ae` was trained with random boxes, and its
    reconstruction fills the holes. `model` is an nn.Module or a finished autoencoder artifact dir."""

    name = "autoencoder"
    mask_dependent = True

    def __init__(self, model: nn.Module | str | Path) -> None:
        if isinstance(model, str | Path):
            from ganmex.models.loading import load_autoencoder

            model = load_autoencoder(model)
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"autoencoder in-fill needs an nn.Module or an artifact directory, got {type(model)}"
            )
        self.model = model.eval().requires_grad_(False)

    def fill(self, x, mask, source, target):
        self.model.to(x.device)
        out = self.model(mask.expand_as(x) * x)
        if out.shape != x.shape:
            raise ValueError(f"autoencoder returned shape {tuple(out.shape)} for images {tuple(x.shape)}")
        return out.clamp(0, 1)

    def __repr__(self) -> str:
        return f"AutoencoderInFill({type(self.model).__name__})"


class GanmexInFill(InFiller):
    """GANMEX's class-targeted in-fill: the removed pixels come from G(x, t), the counterfactual of x in the
    target class. No earlier FIDO implementation had a target-aware in-filler."""

    name = "ganmex"

    def __init__(self, generator) -> None:
        if isinstance(generator, str | Path):
            from ganmex.models.loading import load_counterfactual_generator

            generator = load_counterfactual_generator(generator)
        if not hasattr(generator, "counterfactual"):
            raise TypeError(
                f"ganmex in-fill needs an object with .counterfactual(x, target) (see "
                f"ganmex.models.counterfactual.load_counterfactual_generator), got {type(generator).__name__}"
            )
        self.generator = generator

    def fill(self, x, mask, source, target):
        if target is None:
            raise ValueError("ganmex in-fill needs target classes: G(x, t) is a counterfactual towards t")
        return self.generator.counterfactual(x, target).clamp(0, 1)

    def __repr__(self) -> str:
        return f"GanmexInFill({type(self.generator).__name__})"


class FixedInFill(InFiller):
    """A precomputed fill image per example, e.g. a per-example baseline (zero, blur, GANMEX) handed to
    an attribution method: a fixed in-fill is exactly what a baseline is."""

    name = "baseline"

    def __init__(self, image: Tensor) -> None:
        self.image = image

    def fill(self, x, mask, source, target):
        if self.image.shape != x.shape:
            raise ValueError(
                f"fixed in-fill of shape {tuple(self.image.shape)} does not match images {tuple(x.shape)}"
            )
        return self.image.to(x)
