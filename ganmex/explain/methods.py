"""Attribution-method registry over Captum: one interface for every method, built from YAML.

Interface (other explainers, e.g. FIDO, register against it):

    class AttributionMethod(ABC):
        name: str
        baseline_kind: str   # "none" | "per_example" | "reference_set"
        def attribute(self, model, inputs, baselines, source, target) -> Tensor

* `model` maps [0, 1] pixels (N, C, H, W) to logits (N, K).
* `baselines` is None for "none" methods (saliency, LRP, ...), a tensor shaped like `inputs` for
  "per_example" methods (IG, DeepLIFT, occlusion, ...), or a reference set (M, C, H, W) for
  "reference_set" methods (DeepLiftShap, GradientShap, expected gradients).
* `source`, `target`: (N,) class indices. The attributed scalar is `logit_c - logit_t` when
  `contrast="one_vs_one"` (default), `logit_c` or `log_odds` (see `ganmex.explain.target`);
  every method's constructor accepts `contrast`.
* Returns attributions shaped like `inputs`. Gradients are switched on inside `attribute`, so it
  works within Lightning's test/predict loops (inference mode off, grad on).

Configs: `conf/attribution/<name>.yaml` holds `<name>: {_target_: ...}`; `build_methods(cfg.attribution)`
instantiates the mapping. `register_method(name)` adds a class to `METHODS` for lookups by name.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import captum.attr as ca
import torch
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import Tensor, nn

from ganmex.explain.deeplift_shap import ReferenceDeepLiftShap
from ganmex.explain.hookable import HooksUnsupported, hookable
from ganmex.explain.target import PairOutput, check_contrast, check_pairs
from ganmex.models.inputs import as_pixels, noisy_inputs

log = logging.getLogger(__name__)

BASELINE_KINDS = ("none", "per_example", "reference_set")
METHODS: dict[str, type[AttributionMethod]] = {}


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: make a method available by name (`METHODS[name]`)."""

    def add(cls: type) -> type:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"attribution method {name!r} is already registered by {METHODS[name].__name__}")
        METHODS[name] = cls
        return cls

    return add


class AttributionMethod(ABC):
    """One attribution method; see the module docstring for the contract."""

    name: str = "method"
    baseline_kind: str = "none"

    @abstractmethod
    def attribute(
        self, model: nn.Module, inputs: Tensor, baselines: Tensor | None, source: Tensor, target: Tensor
    ) -> Tensor:
        """model returns logits (N, C) on [0,1] pixels; returns attributions shaped like inputs, for the
        configured contrast (logit_c - logit_t, logit_c or log-odds, from ganmex.explain.target)."""

    def prepare(self, model: nn.Module, inputs: Tensor) -> nn.Module:
        """The model this method can attribute (a hook-ready copy for DeepLIFT and LRP); raises
        HooksUnsupported naming why it cannot explain `model` at all."""
        return model

    def check_baselines(self, inputs: Tensor, baselines: Tensor | None) -> None:
        """Clear errors when a baseline of the wrong kind reaches this method."""
        if self.baseline_kind == "none":
            return
        if baselines is None:
            raise ValueError(f"method {self.name!r} needs a {self.baseline_kind} baseline, got none")
        if self.baseline_kind == "per_example" and baselines.shape != inputs.shape:
            raise ValueError(
                f"method {self.name!r} needs a per-example baseline shaped like the inputs "
                f"{tuple(inputs.shape)}, got {tuple(baselines.shape)}; use zero, blur, mdts, ganmex, ..."
            )
        if self.baseline_kind == "reference_set" and (
            baselines.dim() != inputs.dim() or baselines.shape[1:] != inputs.shape[1:]
        ):
            raise ValueError(
                f"method {self.name!r} needs a reference set (M, {', '.join(map(str, inputs.shape[1:]))}), "
                f"got {tuple(baselines.shape)}; use baselines=training_distribution"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, baseline_kind={self.baseline_kind!r})"


@contextmanager
def gradients_on() -> Iterator[None]:
    """Lightning's test/predict loops run under inference mode; attributions need autograd."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Reproducible sampling (GradientShap, Shapley, noise tunnel) without touching the global RNG."""
    if seed is None:
        yield
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def patch_mask(inputs: Tensor, patch_size: int) -> Tensor:
    """Feature mask grouping square patches (all channels together) into one feature each."""
    n, c, h, w = inputs.shape
    rows = torch.arange(h, device=inputs.device) // patch_size
    cols = torch.arange(w, device=inputs.device) // patch_size
    ids = rows[:, None] * math.ceil(w / patch_size) + cols[None, :]
    return ids.expand(n, c, h, w).contiguous()


class CaptumMethod(AttributionMethod):
    """Shared plumbing: pair-output wrapper, gradients on, chunking, seeding.

    Subclasses say which Captum class to build and which extra `attribute` keywords to pass.
    `batch_size` splits large batches into chunks (bounds memory for N x steps or N x references);
    `forward_batch` caps the images of each forward pass of the model (`PairOutput.max_batch`), which leaves
    the attributions unchanged and keeps the passes in a CPU's caches.
    """

    # Gaussian noise the method adds to its inputs itself (the classifier then accepts pixels beyond [0, 1])
    noise_std = 0.0

    def __init__(
        self,
        contrast: str = "one_vs_one",
        batch_size: int | None = None,
        seed: int | None = None,
        forward_batch: int | None = None,
    ):
        self.contrast = check_contrast(contrast)
        for name, value in (("batch_size", batch_size), ("forward_batch", forward_batch)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or null, got {value}")
        self.batch_size = batch_size
        self.forward_batch = forward_batch
        self.seed = seed

    @abstractmethod
    def build(self, forward: PairOutput) -> Any:
        """The Captum attribution object for the wrapped model."""

    def options(self, inputs: Tensor) -> dict[str, Any]:
        """Extra keywords for Captum's `attribute` (steps, windows, masks...)."""
        return {}

    def run(
        self, attributor: Any, inputs: Tensor, baselines: Tensor | None, extra: tuple, **kw: Any
    ) -> Tensor:
        if self.baseline_kind != "none":
            kw["baselines"] = baselines
        return attributor.attribute(inputs, additional_forward_args=extra, **kw)

    def attribute(
        self, model: nn.Module, inputs: Tensor, baselines: Tensor | None, source: Tensor, target: Tensor
    ) -> Tensor:
        check_pairs(inputs, source, target)
        self.check_baselines(inputs, baselines)
        if self.noise_std:  # the clean inputs are pixels; only the noise this method adds may leave [0, 1]
            as_pixels(inputs, "inputs")
        noise = noisy_inputs(self.noise_std) if self.noise_std else contextlib.nullcontext()
        with gradients_on(), seeded(self.seed), noise, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*hooks and attributes on non-linear.*")
            forward = PairOutput(self.prepare(model, inputs), self.contrast, self.forward_batch)
            attributor = self.build(forward)
            inputs = inputs.detach().clone().requires_grad_(True)
            baselines = baselines.detach().clone() if baselines is not None else None
            step = self.batch_size or max(inputs.shape[0], 1)
            chunks = []
            for start in range(0, inputs.shape[0], step):
                part = slice(start, start + step)
                chunk_baselines = baselines[part] if self.baseline_kind == "per_example" else baselines
                extra = (source[part].to(inputs.device), target[part].to(inputs.device))
                out = self.run(attributor, inputs[part], chunk_baselines, extra, **self.options(inputs[part]))
                chunks.append(out.detach().to(inputs.dtype))
            return torch.cat(chunks) if chunks else torch.zeros_like(inputs)


@register_method("saliency")
class Saliency(CaptumMethod):
    """|d f / d x| (Simonyan et al.); `abs=False` keeps the sign."""

    baseline_kind = "none"

    def __init__(self, abs: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.abs = abs

    def build(self, forward: PairOutput) -> Any:
        return ca.Saliency(forward)

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {"abs": self.abs}


@register_method("grad_x_input")
class GradXInput(CaptumMethod):
    """x * d f / d x (Shrikumar et al.)."""

    baseline_kind = "none"

    def build(self, forward: PairOutput) -> Any:
        return ca.InputXGradient(forward)


@register_method("integrated_gradients")
class IntegratedGradients(CaptumMethod):
    """(x - x') * mean of gradients along the straight path; `method`: riemann_* or gausslegendre.

    `internal_batch_size` caps how many path points are evaluated at once, so 50-300 steps fit in memory.
    """

    baseline_kind = "per_example"
    RULES = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")

    def __init__(
        self,
        steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if method not in self.RULES:
            raise ValueError(f"unknown integration rule method={method!r}; choose one of {self.RULES}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.method, self.internal_batch_size = steps, method, internal_batch_size

    def build(self, forward: PairOutput) -> Any:
        return ca.IntegratedGradients(forward)

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {"n_steps": self.steps, "method": self.method, "internal_batch_size": self.internal_batch_size}


@register_method("deeplift")
class DeepLift(CaptumMethod):
    """DeepLIFT, rescale rule (Shrikumar et al. 2017): attributions sum to f(x) - f(x')."""

    baseline_kind = "per_example"

    def __init__(self, eps: float = 1e-10, **kw: Any) -> None:
        super().__init__(**kw)
        self.eps = eps

    def prepare(self, model: nn.Module, inputs: Tensor) -> nn.Module:
        return hookable(model, inputs)

    def build(self, forward: PairOutput) -> Any:
        return ca.DeepLift(forward, eps=self.eps)


@register_method("deeplift_shap")
class DeepLiftShap(CaptumMethod):
    """DeepLIFT averaged over a reference set (SHAP values approximation)."""

    baseline_kind = "reference_set"

    def prepare(self, model: nn.Module, inputs: Tensor) -> nn.Module:
        return hookable(model, inputs)

    def build(self, forward: PairOutput) -> Any:
        return ReferenceDeepLiftShap(forward)  # Captum's, each reference run once per call


@register_method("gradient_shap")
class GradientShap(CaptumMethod):
    """IG expectation over references and random path points; `stdevs` adds input noise.

    With `stdevs=0` over training references this is expected gradients (Erion et al.).
    """

    baseline_kind = "reference_set"

    def __init__(self, n_samples: int = 50, stdevs: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.n_samples, self.stdevs = n_samples, stdevs
        self.noise_std = stdevs

    def build(self, forward: PairOutput) -> Any:
        return ca.GradientShap(forward)

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "stdevs": self.stdevs}


register_method("expected_gradients")(GradientShap)


class NormalizeRule(EpsilonRule):
    """LRP through an elementwise (x - m) / s layer: relevance passes through unchanged.

    The generic epsilon rule would scale relevance by x / (x - m), which explodes where x is near
    the dataset mean; input normalisation is a change of coordinates, not evidence.
    """

    def __init__(self, mean: Tensor, epsilon: float) -> None:
        super().__init__(epsilon)
        self.mean = mean

    def _create_backward_hook_input(self, inputs: Tensor) -> Callable[[Tensor], Tensor]:
        centred = inputs - self.mean.to(inputs.device)
        hook = super()._create_backward_hook_input(centred)
        return hook


LRP_LAYERS = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm2d)
LRP_PASS = (nn.ReLU, nn.Dropout, nn.Tanh)


@register_method("lrp")
class LRP(AttributionMethod):
    """Layer-wise relevance propagation, epsilon rule on every layer (Bach et al. 2015).

    Captum starts LRP from one logit, so the pair scalar becomes a one-unit head: the last Linear layer
    is replaced by the row `w_c - w_t` (or `w_c`) for each (source, target) group, and relevance then
    sums to that scalar (less what biases absorb). Works on copies; `Normalize` passes relevance through
    and `nn.Flatten` reshapes it; any other layer without a rule raises an error naming it.
    """

    baseline_kind = "none"

    def __init__(self, epsilon: float = 1e-9, contrast: str = "one_vs_one") -> None:
        if check_contrast(contrast) == "log_odds":
            raise ValueError("LRP explains a linear contrast of the last layer; use one_vs_one or logit_c")
        self.epsilon, self.contrast = epsilon, contrast

    @staticmethod
    def split(model: nn.Module) -> tuple[list[nn.Module], nn.Linear]:
        """(layers before the last Linear, last Linear) for our Classifier, an imported classifier
        whose network is an nn.Sequential, or an nn.Sequential."""
        if hasattr(model, "normalize") and hasattr(model, "body") and isinstance(model.head, nn.Linear):
            return [model.normalize, model.body], model.head
        if hasattr(model, "normalize") and isinstance(getattr(model, "net", None), nn.Sequential):
            trunk, head = LRP.split(model.net)
            return [model.normalize, *trunk], head
        if isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Linear):
            return list(model[:-1]), model[-1]
        inner = getattr(model, "net", model)
        raise HooksUnsupported(
            "LRP needs the network as an nn.Sequential ending in nn.Linear (or a ganmex Classifier); "
            f"got {type(inner).__name__}"
        )

    def prepare(self, model: nn.Module, inputs: Tensor) -> nn.Module:
        model = hookable(model, inputs, check_rules=False)  # attach_rules names layers without a rule
        self.split(model)
        return model

    def attach_rules(self, model: nn.Module) -> None:
        from ganmex.models.classifiers import Normalize

        unsupported = []
        for name, layer in model.named_modules():
            if list(layer.children()):
                continue
            if isinstance(layer, Normalize):
                layer.rule = NormalizeRule(layer.mean, self.epsilon)
            elif isinstance(layer, nn.Flatten | nn.Identity) or type(layer) in LRP_LAYERS:
                layer.rule = EpsilonRule(self.epsilon)
            elif type(layer) not in LRP_PASS:
                unsupported.append(f"{name or '<root>'} ({type(layer).__name__})")
        if unsupported:
            supported = ", ".join(t.__name__ for t in (*LRP_LAYERS, *LRP_PASS, nn.Flatten, Normalize))
            raise TypeError(
                f"LRP has no rule for layer(s) {', '.join(unsupported)}; supported: {supported}. "
                f"Give such a layer a rule (layer.rule = captum EpsilonRule()) or choose another method"
            )

    def attribute(
        self, model: nn.Module, inputs: Tensor, baselines: Tensor | None, source: Tensor, target: Tensor
    ) -> Tensor:
        check_pairs(inputs, source, target)
        trunk, head = self.split(self.prepare(model, inputs))
        pairs = torch.stack([source, target], 1).to(inputs.device).long()
        with gradients_on():
            out = torch.zeros_like(inputs)
            inputs = inputs.detach().clone().requires_grad_(True)
            for c, t in pairs.unique(dim=0).tolist():
                rows = ((pairs[:, 0] == c) & (pairs[:, 1] == t)).nonzero().squeeze(1)
                contrast = nn.Linear(head.in_features, 1, bias=head.bias is not None).to(head.weight)
                weight, bias = head.weight[c], head.bias[c] if head.bias is not None else None
                if self.contrast == "one_vs_one":
                    weight = weight - head.weight[t]
                    bias = bias - head.bias[t] if bias is not None else None
                contrast.weight.data.copy_(weight.detach()[None])
                if bias is not None:
                    contrast.bias.data.copy_(bias.detach().view(1))
                net = copy.deepcopy(nn.Sequential(*trunk, contrast)).eval().requires_grad_(False)
                self.attach_rules(net)
                lrp = ca.LRP(net)
                out[rows] = lrp.attribute(
                    inputs[rows].detach().clone().requires_grad_(True), target=0
                ).detach()
        return out


@register_method("occlusion")
class Occlusion(CaptumMethod):
    """Output drop when a window is replaced by the baseline (Zeiler & Fergus).

    `normalize_by_window=True` divides by the window's size (DeepExplain's convention), so the
    attribution is per pixel rather than per window.
    """

    baseline_kind = "per_example"

    def __init__(
        self,
        window: int = 4,
        stride: int = 2,
        normalize_by_window: bool = False,
        perturbations_per_eval: int = 64,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if window < 1 or stride < 1:
            raise ValueError(f"occlusion window and stride must be >= 1, got window={window} stride={stride}")
        self.window, self.stride = window, stride
        self.normalize_by_window = normalize_by_window
        self.perturbations_per_eval = perturbations_per_eval

    def build(self, forward: PairOutput) -> Any:
        return ca.Occlusion(forward)

    def options(self, inputs: Tensor) -> dict[str, Any]:
        c = inputs.shape[1]
        return {
            "sliding_window_shapes": (c, self.window, self.window),
            "strides": (c, self.stride, self.stride),
            "perturbations_per_eval": self.perturbations_per_eval,
        }

    def run(
        self, attributor: Any, inputs: Tensor, baselines: Tensor | None, extra: tuple, **kw: Any
    ) -> Tensor:
        out = super().run(attributor, inputs, baselines, extra, **kw)
        if self.normalize_by_window:
            out = out / (inputs.shape[1] * self.window * self.window)
        return out


class _MaskedPerturbation(CaptumMethod):
    """Methods that perturb groups of pixels: `patch_size` squares form one feature."""

    baseline_kind = "per_example"

    def __init__(self, patch_size: int = 2, perturbations_per_eval: int = 64, **kw: Any) -> None:
        super().__init__(**kw)
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.patch_size, self.perturbations_per_eval = patch_size, perturbations_per_eval

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {
            "feature_mask": patch_mask(inputs, self.patch_size),
            "perturbations_per_eval": self.perturbations_per_eval,
        }


@register_method("shapley_sampling")
class ShapleySampling(_MaskedPerturbation):
    """Shapley values by permutation sampling (Castro et al.); features replaced by the baseline."""

    def __init__(self, n_samples: int = 5, patch_size: int = 4, **kw: Any) -> None:
        super().__init__(patch_size=patch_size, **kw)
        self.n_samples = n_samples

    def build(self, forward: PairOutput) -> Any:
        return ca.ShapleyValueSampling(forward)

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {**super().options(inputs), "n_samples": self.n_samples}


@register_method("feature_ablation")
class FeatureAblation(_MaskedPerturbation):
    """Output drop when each feature alone is replaced by the baseline."""

    def build(self, forward: PairOutput) -> Any:
        return ca.FeatureAblation(forward)


@register_method("noise_tunnel")
class NoiseTunnel(CaptumMethod):
    """SmoothGrad family around another Captum method: smoothgrad, smoothgrad_sq or vargrad."""

    TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

    def __init__(
        self,
        method: CaptumMethod,
        nt_type: str = "smoothgrad",
        nt_samples: int = 10,
        stdevs: float = 0.15,
        nt_samples_batch_size: int | None = None,
        **kw: Any,
    ) -> None:
        if not isinstance(method, CaptumMethod) or isinstance(method, LRP):
            kind = type(method).__name__
            raise TypeError(f"noise_tunnel wraps a gradient or perturbation method, not {kind}")
        if nt_type not in self.TYPES:
            raise ValueError(f"unknown nt_type={nt_type!r}; choose one of {self.TYPES}")
        kw.setdefault("contrast", method.contrast)
        super().__init__(**kw)
        method.contrast = self.contrast
        self.method, self.nt_type, self.nt_samples, self.stdevs = method, nt_type, nt_samples, stdevs
        self.nt_samples_batch_size = nt_samples_batch_size
        self.baseline_kind = method.baseline_kind
        self.noise_std = stdevs

    def prepare(self, model: nn.Module, inputs: Tensor) -> nn.Module:
        return self.method.prepare(model, inputs)

    def build(self, forward: PairOutput) -> Any:
        return ca.NoiseTunnel(self.method.build(forward))

    def options(self, inputs: Tensor) -> dict[str, Any]:
        return {
            **self.method.options(inputs),
            "nt_type": self.nt_type,
            "nt_samples": self.nt_samples,
            "stdevs": self.stdevs,
            "nt_samples_batch_size": self.nt_samples_batch_size,
        }


def build_methods(config: Mapping | None, **overrides: Any) -> dict[str, AttributionMethod]:
    """name -> method from a name -> `{_target_: ...}` mapping (the composed `attribution` group).

    `overrides` (e.g. `contrast="logit_c"`) are passed to every method's constructor.
    """
    from hydra.utils import instantiate

    methods: dict[str, AttributionMethod] = {}
    for name, conf in (config or {}).items():
        if conf is None:
            continue
        if "_target_" not in conf:
            raise ValueError(f"attribution.{name} has no _target_; see conf/attribution/*.yaml for examples")
        method = instantiate(conf, **overrides)
        if not isinstance(method, AttributionMethod):
            raise TypeError(f"attribution.{name} built a {type(method).__name__}, not an AttributionMethod")
        method.name = str(name)
        methods[str(name)] = method
    return methods


def applicable_methods(
    methods: Mapping[str, AttributionMethod], model: nn.Module, example: Tensor
) -> dict[str, AttributionMethod]:
    """The methods that can explain `model`; each one that cannot is left out with one logged line
    (DeepLIFT on a TorchScript model, LRP on a network that is not an nn.Sequential, ...)."""
    usable = {}
    for name, method in methods.items():
        try:
            with gradients_on():
                method.prepare(model, example[:1])
        except HooksUnsupported as reason:
            log.warning("skipping attribution method %s: %s", name, reason)
            continue
        usable[name] = method
    return usable


def method_by_name(name: str, **kwargs: Any) -> AttributionMethod:
    """A registered method with its constructor's arguments (defaults come from `conf/attribution`)."""
    if name not in METHODS:
        raise KeyError(f"unknown attribution method {name!r}; choose one of {sorted(METHODS)}")
    method = METHODS[name](**kwargs)
    method.name = name
    return method
