"""Baseline registry: what an explanation compares x against, built from `conf/baselines/*.yaml`.

A baseline is a callable `(x, source, target) -> Tensor` in [0, 1]:
* kind "per_example": shaped like x (zero, constant, blur, noise, mean, max_distance, mdts, ganmex);
  these feed IG, DeepLIFT, occlusion, Shapley sampling, feature ablation.
* kind "reference_set": (K, C, H, W) references independent of x (training_distribution);
  these feed DeepLiftShap, GradientShap and expected gradients.

Baselines that need data or models (mean, mdts, training_distribution, ganmex) declare it in `needs`
and receive it once through `setup(BaselineContext(...))`; `build_baselines` does both steps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ganmex.tensors import blur_radius, gaussian_blur

BASELINES: dict[str, type[Baseline]] = {}


def register_baseline(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        BASELINES[name] = cls
        return cls

    return add


@dataclass
class BaselineContext:
    """What context-dependent baselines may use; fill only what the configured baselines need.

    `train_images`: float (N, C, H, W) in [0, 1]; `generator`: `(x, target) -> x'` in [0, 1]
    (e.g. `ganmex.models.counterfactual.CounterfactualGenerator`); `batch_size` bounds classifier passes.
    """

    classifier: nn.Module | None = None
    train_images: Tensor | None = None
    train_labels: Tensor | None = None
    generator: Callable[[Tensor, Tensor], Tensor] | None = None
    device: torch.device | str = "cpu"
    batch_size: int = 512


class Baseline(ABC):
    """A per-example baseline or a reference set; see the module docstring."""

    name: str = "baseline"
    kind: str = "per_example"
    needs: tuple[str, ...] = ()

    def setup(self, context: BaselineContext) -> Baseline:
        """Take what this baseline needs from the context (called once, before the first call)."""
        missing = [field for field in self.needs if getattr(context, field) is None]
        if missing:
            raise ValueError(
                f"baseline {self.name!r} needs {', '.join(missing)} in its BaselineContext "
                f"(the explain mode loads them from the classifier/gan artifacts and the training set)"
            )
        self.prepare(context)
        return self

    def prepare(self, context: BaselineContext) -> None:  # noqa: B027 (optional hook)
        """Build indexes or statistics from the context; nothing by default."""

    @abstractmethod
    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        """Baseline(s) for x in [0, 1]."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"baselines take NCHW image batches, got shape {tuple(x.shape)}")


def _ready(value: Tensor | None, name: str) -> Tensor:
    if value is None:
        raise RuntimeError(f"baseline {name!r} is not set up; call .setup(BaselineContext(...)) first")
    return value


@register_baseline("constant")
class Constant(Baseline):
    """Every pixel = value (0 is black: DeepExplain's and IG's usual baseline)."""

    def __init__(self, value: float = 0.0) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"constant baseline value must lie in [0, 1] (pixel space), got {value}")
        self.value = value

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        return torch.full_like(x, self.value)


@register_baseline("zero")
class Zero(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)


@register_baseline("blur")
class Blur(Baseline):
    """Gaussian blur of x: a separable convolution with reflect padding.

    `kernel_size` null picks the smallest odd size covering +-3 sigma (capped so reflect padding fits).
    """

    def __init__(self, sigma: float = 5.0, kernel_size: int | None = None) -> None:
        if sigma <= 0:
            raise ValueError(f"blur sigma must be > 0, got {sigma}")
        if kernel_size is not None and (kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"blur kernel_size must be a positive odd integer, got {kernel_size}")
        self.sigma, self.kernel_size = sigma, kernel_size

    def radius_for(self, height: int, width: int) -> int:
        if self.kernel_size is None:
            return blur_radius(self.sigma, height, width)
        if self.kernel_size // 2 >= min(height, width):
            raise ValueError(
                f"blur kernel_size={self.kernel_size} is too large for {height}x{width} images "
                f"(needs < {2 * min(height, width)}); set baselines.blur.kernel_size"
            )
        return self.kernel_size // 2

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        return gaussian_blur(x, self.sigma, self.radius_for(*x.shape[-2:])).clamp(0, 1)


class _Noise(Baseline):
    """Seeded noise: the same x gets the same baseline on every call (reproducible figures)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def generator(self, x: Tensor) -> torch.Generator:
        return torch.Generator(device=x.device).manual_seed(self.seed)


@register_baseline("uniform")
class Uniform(_Noise):
    """Pixels drawn from U(0, 1)."""

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        return torch.rand(x.shape, generator=self.generator(x), device=x.device, dtype=x.dtype)


@register_baseline("gaussian")
class Gaussian(_Noise):
    """x + N(0, sigma^2), clipped to [0, 1]."""

    def __init__(self, sigma: float = 0.3, seed: int = 0) -> None:
        super().__init__(seed)
        if sigma < 0:
            raise ValueError(f"gaussian baseline sigma must be >= 0, got {sigma}")
        self.sigma = sigma

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        noise = torch.randn(x.shape, generator=self.generator(x), device=x.device, dtype=x.dtype)
        return (x + self.sigma * noise).clamp(0, 1)


@register_baseline("max_distance")
class MaxDistance(Baseline):
    """The [0, 1] image farthest from x in L1: 1 where x < 0.5, else 0 (Sturmfels et al. 2020)."""

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        return (x < 0.5).to(x.dtype)


@register_baseline("mean")
class MeanImage(Baseline):
    """The per-pixel mean of the training images."""

    needs = ("train_images",)

    def __init__(self) -> None:
        self.image: Tensor | None = None

    def prepare(self, context: BaselineContext) -> None:
        self.image = context.train_images.float().mean(0, keepdim=True).to(context.device)

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        image = _ready(self.image, self.name)
        if image.shape[1:] != x.shape[1:]:
            raise ValueError(f"mean image is {tuple(image.shape[1:])} but x is {tuple(x.shape[1:])}")
        return image.to(x.device, x.dtype).expand_as(x).clone()


@torch.no_grad()
def predict(classifier: nn.Module, images: Tensor, batch_size: int, device: torch.device | str) -> Tensor:
    """Class predictions of the classifier, in batches on `device` (returned on `device`)."""
    starts = range(0, len(images), batch_size)
    out = [classifier(images[i : i + batch_size].to(device)).argmax(1) for i in starts]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=device)


@register_baseline("mdts")
class MDTS(Baseline):
    """Minimum-distance training sample: the training image nearest to x in L2 among those the
    classifier assigns to the target class (GANMEX's MDTS baseline).

    The index (images grouped by predicted class, flattened, with squared norms) is built once on the
    device; queries compute ||x||^2 - 2 x.y + ||y||^2 against `chunk_size` training rows at a time.
    """

    needs = ("classifier", "train_images")

    def __init__(self, chunk_size: int = 4096) -> None:
        if chunk_size < 1:
            raise ValueError(f"mdts chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self.bank: dict[int, Tensor] = {}
        self.norms: dict[int, Tensor] = {}
        self.shape: tuple[int, ...] | None = None

    def prepare(self, context: BaselineContext) -> None:
        images = context.train_images.float()
        predicted = predict(context.classifier, images, context.batch_size, context.device)
        flat = images.flatten(1).to(context.device)
        self.shape = tuple(images.shape[1:])
        self.bank = {int(c): flat[predicted == c] for c in predicted.unique()}
        self.norms = {c: rows.pow(2).sum(1) for c, rows in self.bank.items()}

    @torch.no_grad()
    def nearest(self, queries: Tensor, cls: int) -> Tensor:
        """Index into `bank[cls]` of the nearest row to each query (N, D)."""
        rows, norms = self.bank[cls], self.norms[cls]
        best = torch.full((len(queries),), float("inf"), device=queries.device)
        best_index = torch.zeros(len(queries), dtype=torch.long, device=queries.device)
        for start in range(0, len(rows), self.chunk_size):
            part = rows[start : start + self.chunk_size]
            distances = norms[start : start + self.chunk_size][None, :] - 2.0 * queries @ part.T
            value, index = distances.min(1)
            better = value < best
            best = torch.where(better, value, best)
            best_index = torch.where(better, index + start, best_index)
        return best_index

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        if self.shape is None:
            _ready(None, self.name)
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"mdts index holds {self.shape} images but x is {tuple(x.shape[1:])}")
        device = next(iter(self.bank.values())).device
        queries = x.detach().flatten(1).to(device, torch.float32)
        target = target.to(device).long()
        out = torch.empty_like(queries)
        for cls in target.unique().tolist():
            if cls not in self.bank:
                raise ValueError(
                    f"mdts: the classifier assigns no training image to target class {cls}; "
                    f"classes available: {sorted(self.bank)}"
                )
            rows = (target == cls).nonzero().squeeze(1)
            out[rows] = self.bank[cls][self.nearest(queries[rows], cls)]
        return out.view_as(x).to(x.device, x.dtype)


@register_baseline("training_distribution")
class TrainingDistribution(Baseline):
    """A fixed random sample of `n_samples` training images: the reference set of the SHAP variants."""

    kind = "reference_set"
    needs = ("train_images",)

    def __init__(self, n_samples: int = 100, seed: int = 0) -> None:
        if n_samples < 1:
            raise ValueError(f"training_distribution n_samples must be >= 1, got {n_samples}")
        self.n_samples, self.seed = n_samples, seed
        self.references: Tensor | None = None

    def prepare(self, context: BaselineContext) -> None:
        images = context.train_images
        generator = torch.Generator().manual_seed(self.seed)
        index = torch.randperm(len(images), generator=generator)[: self.n_samples]
        self.references = images[index].float().to(context.device)

    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        references = _ready(self.references, self.name)
        if references.shape[1:] != x.shape[1:]:
            shape = tuple(references.shape[1:])
            raise ValueError(f"reference images are {shape} but x is {tuple(x.shape[1:])}")
        return references.to(x.device, x.dtype)


@register_baseline("ganmex")
class Ganmex(Baseline):
    """G(x, t): the GANMEX generator's counterfactual of x as class t (Shih et al. 2021)."""

    needs = ("generator",)

    def __init__(self) -> None:
        self.generator: Callable[[Tensor, Tensor], Tensor] | None = None

    def prepare(self, context: BaselineContext) -> None:
        self.generator = context.generator

    @torch.no_grad()
    def __call__(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        _check_images(x)
        if self.generator is None:
            _ready(None, self.name)
        out = self.generator(x.detach(), target)
        if out.shape != x.shape:
            raise ValueError(f"generator returned {tuple(out.shape)} for inputs {tuple(x.shape)}")
        return out.to(x.device, x.dtype).clamp(0, 1)


def instantiate_baselines(config: Mapping | None) -> dict[str, Baseline]:
    """name -> baseline (not yet set up) from a name -> `{_target_: ...}` mapping."""
    from hydra.utils import instantiate

    baselines: dict[str, Baseline] = {}
    for name, conf in (config or {}).items():
        if conf is None:
            continue
        if "_target_" not in conf:
            raise ValueError(f"baselines.{name} has no _target_; see conf/baselines/*.yaml for examples")
        baseline = instantiate(conf)
        if not isinstance(baseline, Baseline):
            raise TypeError(f"baselines.{name} built a {type(baseline).__name__}, not a Baseline")
        baseline.name = str(name)
        baselines[str(name)] = baseline
    return baselines


def needed_context(baselines: Mapping[str, Baseline]) -> set[str]:
    """The BaselineContext fields these baselines need (so callers load only those)."""
    return {field for baseline in baselines.values() for field in baseline.needs}


def build_baselines(config: Mapping | None, context: BaselineContext | None = None) -> dict[str, Baseline]:
    """Instantiate and set up every configured baseline."""
    baselines = instantiate_baselines(config)
    context = context or BaselineContext()
    for baseline in baselines.values():
        baseline.setup(context)
    return baselines


def baseline_by_name(name: str, context: BaselineContext | None = None, **kwargs: Any) -> Baseline:
    """A registered baseline with its constructor's arguments, set up with `context`."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    baseline = BASELINES[name](**kwargs)
    baseline.name = name
    return baseline.setup(context or BaselineContext())
