"""FIDO and BBMP: saliency as the mask an optimiser finds when removed pixels are counterfactually in-filled.

FIDO (Chang, Creager, Goldenberg, Duvenaud, ICLR 2019) learns a factorised Bernoulli mask over a coarse
grid, relaxed with the concrete distribution so it can be optimised by gradient; BBMP (Fong & Vedaldi,
ICCV 2017) learns a deterministic mask in [0, 1]. Both come in two objectives on the composite

    x_hat = z * x + (1 - z) * infill(x),        z = keep mask, no gradient through the in-filler

- SSR, smallest sufficient region: minimise  -s(c | x_hat) + lambda * sum(keep mask)
- SDR, smallest destroying region: minimise   s(c | x_hat) + lambda * sum(drop mask),  z = 1 - drop

with s the log-odds of the source class, log p(c) - log sum_{c' != c} p(c'), or logit_c - logit_t.
The saliency map is the learnt keep mask (SSR) or drop mask (SDR): higher = more important for c.
The original code handled one image at a time under PyTorch 0.3; here every image in a batch has its
own mask parameters, and since Adam is element-wise, a batch optimises exactly as its images would alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganmex.errors import check_choice
from ganmex.explain.infill import FixedInFill, InFiller
from ganmex.explain.methods import AttributionMethod, gradients_on, register_method
from ganmex.explain.target import check_contrast, pair_scalar
from ganmex.tensors import as_labels

OBJECTIVES = ("ssr", "sdr")
MASKS = ("fido", "bbmp")
SMOOTHNESS = ("tv", "l2")
EPS = 1e-6


def concrete_sample(logit_p: Tensor, temperature: float, uniform: Tensor | None = None) -> Tensor:
    """Relaxed Bernoulli(sigmoid(logit_p)) sample: sigmoid((logit_p + log u - log(1 - u)) / temperature).

    As temperature -> 0 it becomes the hard sample 1[logit_p + logit(u) > 0] = 1[u > 1 - p], a Bernoulli(p)
    draw; the noise u enters as a reparametrisation, so gradients reach logit_p.
    """
    if temperature <= 0:
        raise ValueError(f"concrete temperature={temperature} must be > 0 (FIDO uses 0.1)")
    if uniform is None:
        uniform = torch.rand_like(logit_p)
    u = uniform.clamp(EPS, 1 - EPS)
    return torch.sigmoid((logit_p + torch.log(u) - torch.log1p(-u)) / temperature)


def upsample(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Coarse (N, 1, g, g) grid -> (N, 1, H, W) by bilinear interpolation (identity if sizes agree)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)


def smoothness(mask: Tensor, kind: str = "tv") -> Tensor:
    """Per-image roughness of a (N, 1, h, w) mask: mean |neighbour difference| (tv) or its square (l2),
    summed over the two axes."""
    check_choice("fido smoothness", kind, SMOOTHNESS)
    dy = mask[..., 1:, :] - mask[..., :-1, :]
    dx = mask[..., :, 1:] - mask[..., :, :-1]
    power = 1 if kind == "tv" else 2
    per = [d.abs().pow(power).flatten(1).mean(1) for d in (dy, dx) if d.numel()]
    return sum(per) if per else mask.new_zeros(mask.shape[0])


def fido_loss(score: Tensor, mask_sum: Tensor, objective: str, reg_coef: float) -> Tensor:
    """Per-image objective: SSR -s + lambda * sum(keep); SDR s + lambda * sum(drop)."""
    sign = -1.0 if check_choice("fido objective", objective, OBJECTIVES) == "ssr" else 1.0
    return sign * score + reg_coef * mask_sum


def warmup(step: int, rw_max: int) -> float:
    """Regulariser weight at `step`: rises linearly from 0 to 1 over `rw_max` steps (FIDO's rw_max)."""
    return 1.0 if rw_max <= 0 else min(1.0, step / rw_max)


@register_method("fido")
class FidoSaliency(AttributionMethod):
    """FIDO/BBMP saliency for a batch of (image, source, target) triples. Hyper-parameters keep the
    original's names: `dropout_param_size` (coarse grid side), `reg_coef` (lambda), `lr`, `epochs`
    (optimisation steps), `batch_size` (MC samples per step), `tv_coef`, `rw_max` (warm-up steps).

    `infill`: an InFiller, or None to in-fill with the per-example `baselines` handed to `attribute`.
    `contrast`: the score s FIDO moves (ganmex.explain.target): log_odds (FIDO's own, the default here) or
    the run's contrast, which the evaluation and mode=explain pass to every method.
    """

    def __init__(
        self,
        objective: str = "ssr",
        mask: str = "fido",
        infill: InFiller | None = None,
        dropout_param_size: int = 14,
        reg_coef: float = 0.05,
        lr: float = 0.1,
        epochs: int = 100,
        batch_size: int = 4,
        tv_coef: float = 0.0,
        smoothness: str = "tv",
        rw_max: int = 20,
        temperature: float = 0.1,
        init: float = 0.5,
        contrast: str = "log_odds",
        seed: int | None = 0,
        name: str | None = None,
        progress: bool = False,
    ) -> None:
        self.objective = check_choice("fido objective", objective, OBJECTIVES)
        self.mask = check_choice("fido mask", mask, MASKS)
        self.contrast = check_contrast(contrast)
        self.smooth_kind = check_choice("fido smoothness", smoothness, SMOOTHNESS)
        for key, value in (
            ("dropout_param_size", dropout_param_size),
            ("epochs", epochs),
            ("batch_size", batch_size),
        ):
            if int(value) < 1:
                raise ValueError(f"{key}={value} must be a positive integer")
        for key, value in (("reg_coef", reg_coef), ("tv_coef", tv_coef), ("rw_max", rw_max)):
            if value < 0:
                raise ValueError(f"{key}={value} must be >= 0")
        if lr <= 0 or temperature <= 0:
            raise ValueError(f"lr={lr} and temperature={temperature} must be > 0")
        if not 0.0 < init < 1.0:
            raise ValueError(f"init={init} is the initial mask probability and must lie strictly in (0, 1)")
        if infill is not None and not isinstance(infill, InFiller):
            raise TypeError(
                f"infill must be an InFiller from ganmex.explain.infill or None, got {type(infill)}"
            )
        self.infiller = infill
        self.grid = int(dropout_param_size)
        self.reg_coef, self.tv_coef, self.rw_max = float(reg_coef), float(tv_coef), int(rw_max)
        self.lr, self.epochs, self.samples = float(lr), int(epochs), int(batch_size)
        self.temperature, self.init, self.seed, self.progress = (
            float(temperature),
            float(init),
            seed,
            progress,
        )
        self.name = name or f"{mask}_{objective}"
        self.last_history: dict[str, list[float]] = {}

    @property
    def baseline_kind(self) -> str:
        """Per-example baselines are the in-fill unless an in-filler is configured."""
        return "per_example" if self.infiller is None else "none"

    # -- mask parametrisation -------------------------------------------------------------------------
    def _init_params(self, n: int, device, dtype) -> Tensor:
        value = math.log(self.init / (1 - self.init)) if self.mask == "fido" else self.init
        return torch.full((n, 1, self.grid, self.grid), value, device=device, dtype=dtype, requires_grad=True)

    def expected_mask(self, params: Tensor) -> Tensor:
        """The coarse saliency mask: keep (SSR) or drop (SDR) probability, or BBMP's mask value."""
        return torch.sigmoid(params) if self.mask == "fido" else params

    def sample_keep(self, params: Tensor, size: tuple[int, int], uniform: Tensor | None = None) -> Tensor:
        """(samples * N, 1, H, W) keep masks z, sample s in rows [s*N, (s+1)*N). FIDO draws a concrete
        sample per grid cell (from `uniform`, shaped (samples, *params.shape), if given); BBMP's mask is
        deterministic. SDR parametrises the drop mask, so z = 1 - upsampled mask."""
        n = params.shape[0]
        if self.mask == "fido":
            if uniform is None:
                uniform = torch.rand((self.samples, *params.shape), device=params.device, dtype=params.dtype)
            coarse = concrete_sample(params.unsqueeze(0), self.temperature, uniform)
        else:
            coarse = params.unsqueeze(0).expand(self.samples, *params.shape)
        m = upsample(coarse.reshape(-1, *params.shape[1:]), size)
        return (m if self.objective == "ssr" else 1 - m).reshape(self.samples * n, 1, *size)

    def step_loss(
        self,
        model: Callable[[Tensor], Tensor],
        xs: Tensor,
        keep: Tensor,
        fill: Tensor,
        params: Tensor,
        source: Tensor,
        target: Tensor | None,
        step: int,
    ) -> tuple[Tensor, Tensor]:
        """Per-image loss and MC-mean score for one step; `xs`, `keep`, `fill`, labels are the N images
        repeated once per MC sample. The regularisers act on the expected coarse mask."""
        n = params.shape[0]
        x_hat = keep * xs + (1 - keep) * fill.detach()
        score = pair_scalar(model(x_hat), source, target, self.contrast).view(-1, n).mean(0)
        coarse = self.expected_mask(params)
        weight = warmup(step, self.rw_max)
        loss = fido_loss(score, coarse.flatten(1).sum(1), self.objective, weight * self.reg_coef)
        if self.tv_coef > 0:
            loss = loss + weight * self.tv_coef * smoothness(coarse, self.smooth_kind)
        return loss, score

    # -- optimisation ---------------------------------------------------------------------------------
    def __call__(
        self,
        model: Callable[[Tensor], Tensor],
        inputs: Tensor,
        source: Tensor | int,
        target: Tensor | int | None = None,
        infill: InFiller | None = None,
    ) -> Tensor:
        """Optimise one mask per image; return the (N, C, H, W) saliency map (upsampled mask)."""
        infiller = infill or self.infiller
        if infiller is None:
            raise ValueError(f"{self.name}: no in-filler configured and no per-example baselines passed")
        if inputs.ndim != 4:
            raise ValueError(f"inputs must be NCHW images in [0, 1], got shape {tuple(inputs.shape)}")
        with gradients_on():
            return self._optimise(model, inputs.detach().clone(), source, target, infiller)

    def _optimise(self, model, x: Tensor, source, target, infiller: InFiller) -> Tensor:
        n, _, h, w = x.shape
        source = as_labels(source, n, x.device, "source", optional=True)
        target = as_labels(target, n, x.device, "target", optional=True)
        if self.contrast == "one_vs_one" and target is None:
            raise ValueError(f"{self.name}: contrast one_vs_one needs target classes")
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(int(self.seed))
        reps = self.samples
        xs = x.repeat(reps, 1, 1, 1)
        src = source.repeat(reps)
        tgt = target.repeat(reps) if target is not None else None
        fill = None
        if not (infiller.mask_dependent or infiller.stochastic):  # compute once, reuse every step
            with torch.no_grad():
                fill = infiller.fill(x, torch.ones_like(x[:, :1]), source, target).repeat(reps, 1, 1, 1)

        params = self._init_params(n, x.device, x.dtype)
        optimiser = torch.optim.Adam([params], lr=self.lr)
        # linear learning-rate decay to 0 at the last step, as in the original
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda t: 1.0 - t / self.epochs)
        history: dict[str, list[float]] = {"score": [], "mask_mean": []}
        steps = range(self.epochs)
        if self.progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc=self.name, leave=False)
        for step in steps:
            uniform = None
            if self.mask == "fido":
                shape = (reps, *params.shape)
                uniform = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
            keep = self.sample_keep(params, (h, w), uniform)
            step_fill = fill
            if step_fill is None:
                with torch.no_grad():
                    step_fill = infiller.fill(xs, keep.detach(), src, tgt)
            loss, score = self.step_loss(model, xs, keep, step_fill, params, src, tgt, step)
            (params.grad,) = torch.autograd.grad(loss.sum(), [params])
            optimiser.step()
            scheduler.step()
            if self.mask == "bbmp":
                with torch.no_grad():
                    params.clamp_(0.0, 1.0)
            history["score"].append(float(score.detach().mean()))
            history["mask_mean"].append(float(self.expected_mask(params.detach()).mean()))
        self.last_history = history
        saliency = upsample(self.expected_mask(params.detach()), (h, w))
        return saliency.expand_as(x).contiguous()

    def attribute(
        self,
        model: Callable[[Tensor], Tensor],
        inputs: Tensor,
        baselines: Tensor | None,
        source: Tensor,
        target: Tensor,
    ) -> Tensor:
        """AttributionMethod interface: saliency shaped like inputs; `baselines` are the in-fill when no
        in-filler is configured (a per-example baseline is a fixed in-fill)."""
        infill = self.infiller
        if infill is None:
            if baselines is None:
                raise ValueError(
                    f"{self.name} has no in-filler configured, so it needs per-example baselines as in-fill; "
                    f"pass baselines or set {self.name}.infill (see conf/infill/)"
                )
            infill = FixedInFill(baselines.detach())
        return self(model, inputs, source, target, infill=infill)

    def __repr__(self) -> str:
        return (
            f"FidoSaliency(name={self.name}, grid={self.grid}, reg_coef={self.reg_coef}, lr={self.lr}, "
            f"epochs={self.epochs}, samples={self.samples}, tv_coef={self.tv_coef}, rw_max={self.rw_max}, "
            f"infill={self.infiller!r})"
        )
