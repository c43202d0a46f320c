"""Infidelity and max-sensitivity (Yeh et al. 2019) through captum.metrics, on the pair's scored output.

Perturbations come from a seeded torch.Generator (re-seeded by `reset()`), not from torch's global RNG, so
every method x baseline sees the same noise. With `example_ids` (global example indices) each example's noise
comes from its own generator seeded by (seed, id), so it does not depend on the batch or DDP rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.metrics import infidelity, sensitivity_max
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.explain.target import check_contrast, pair_scalar
from ganmex.metrics.faithfulness import draw_per_example, example_generators
from ganmex.metrics.scoring import Model, check_images
from ganmex.models.inputs import noisy_inputs
from ganmex.tensors import as_labels

ExplainFn = Callable[[Tensor, Tensor, Tensor], Tensor]


class _SeededMetric(Metric):
    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self, n_perturb_samples: int, seed: int, max_examples_per_batch: int | None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if n_perturb_samples < 1:
            raise ValueError(f"n_perturb_samples must be >= 1, got {n_perturb_samples}")
        self.n_perturb_samples = int(n_perturb_samples)
        self.seed = int(seed)
        self.max_examples_per_batch = max_examples_per_batch
        self._generator: torch.Generator | None = None
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def reset(self) -> None:
        super().reset()
        self._generator = None

    def sampler(
        self, n: int, device: torch.device, example_ids: Tensor | None
    ) -> Callable[[Tensor, Callable], Tensor]:
        """draw(like, torch.randn | torch.rand) -> noise shaped like `like` (captum's n x k expanded batch):
        from the metric's stream, or per example from (seed, id) generators when `example_ids` is given."""
        if example_ids is None:
            gen = self.generator(device)

            def draw(like: Tensor, fn: Callable) -> Tensor:
                return fn(like.shape, generator=gen, device=like.device, dtype=like.dtype)

            return draw
        generators = example_generators(self.seed, example_ids, n)

        def draw_examples(like: Tensor, fn: Callable) -> Tensor:
            return draw_per_example(generators, like.shape[0], like.shape[1:], fn).to(like)

        return draw_examples


class Infidelity(_SeededMetric):
    """E_I[(I . a - (f(x) - f(x - I)))^2] with Gaussian I ~ N(0, noise_std^2); lower is better.

    update(model, inputs, attributions, source, target, example_ids=None); compute() -> {"infidelity": (N,)}.
    `normalize=True` rescales the attributions by the optimal scalar first (captum's option), so the value
    measures the shape of the explanation, not its scale.
    """

    output_directions = {"infidelity": False}

    def __init__(
        self,
        noise_std: float = 0.1,
        n_perturb_samples: int = 10,
        normalize: bool = True,
        contrast: str = "one_vs_one",
        seed: int = 0,
        max_examples_per_batch: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(n_perturb_samples, seed, max_examples_per_batch, **kwargs)
        if noise_std <= 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std}")
        self.noise_std = float(noise_std)
        self.normalize = bool(normalize)
        self.contrast = check_contrast(contrast)

    def update(
        self,
        model: Model,
        inputs: Tensor,
        attributions: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        example_ids: Tensor | None = None,
    ) -> None:
        x = check_images(inputs)
        n = x.shape[0]
        source = as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        if attributions.shape != x.shape:
            raise ValueError(
                f"attributions {tuple(attributions.shape)} must have the inputs' shape {tuple(x.shape)}"
            )
        draw = self.sampler(n, x.device, example_ids)

        def perturb(inp: Tensor) -> tuple[Tensor, Tensor]:
            noise = self.noise_std * draw(inp, torch.randn)
            return noise, inp - noise

        def forward(inp: Tensor, src: Tensor, tgt: Tensor) -> Tensor:
            return pair_scalar(model(inp), src, tgt, self.contrast)

        with torch.no_grad(), noisy_inputs(self.noise_std):  # x - I leaves [0, 1] on purpose
            values = infidelity(
                forward,
                perturb,
                x,
                attributions.to(x),
                additional_forward_args=(source, target),
                n_perturb_samples=self.n_perturb_samples,
                max_examples_per_batch=self.max_examples_per_batch,
                normalize=self.normalize,
            )
        self.values.append(values.to(x.dtype))

    def compute(self) -> dict[str, Tensor]:
        return {"infidelity": dim_zero_cat(self.values)}


class SensitivityMax(_SeededMetric):
    """max over ||d||_inf <= radius of ||E(x + d) - E(x)|| / ||E(x)||; lower is better.

    update(explain_fn, inputs, source, target, example_ids=None) where explain_fn(x, source, target) ->
    attributions recomputes the explanation, its baseline included (a counterfactual baseline moves with x).
    Perturbed inputs are clamped to [0, 1]. compute() -> {"sensitivity_max": (N,)}.
    """

    output_directions = {"sensitivity_max": False}

    def __init__(
        self,
        perturb_radius: float = 0.02,
        n_perturb_samples: int = 10,
        norm_ord: str = "fro",
        seed: int = 0,
        max_examples_per_batch: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(n_perturb_samples, seed, max_examples_per_batch, **kwargs)
        if perturb_radius <= 0:
            raise ValueError(f"perturb_radius must be > 0, got {perturb_radius}")
        self.perturb_radius = float(perturb_radius)
        self.norm_ord = norm_ord

    def update(
        self,
        explain_fn: ExplainFn,
        inputs: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        example_ids: Tensor | None = None,
        attributions: Tensor | None = None,
    ) -> None:
        """`attributions`: explain_fn's explanation of `inputs` itself, when the caller already has it
        (the evaluation does); otherwise it is recomputed like every perturbed one."""
        x = check_images(inputs)
        n = x.shape[0]
        source = as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        draw = self.sampler(n, x.device, example_ids)

        def perturb(inp: Tensor, radius: float) -> Tensor:
            d = (2 * draw(inp, torch.rand) - 1) * radius
            return (inp + d).clamp(0.0, 1.0)

        def explain(
            inp: Tensor | tuple[Tensor], additional_forward_args: tuple[Tensor, Tensor]
        ) -> tuple[Tensor]:
            # captum hands over and iterates tuples of input tensors
            inp = inp[0] if isinstance(inp, tuple) else inp
            if attributions is not None and inp is x:  # captum's first call explains the inputs themselves
                return (attributions.detach(),)
            with torch.enable_grad():  # torchmetrics runs update() without autograd; explanations need it
                return (explain_fn(inp, *additional_forward_args).detach(),)

        values = sensitivity_max(
            explain,
            x,
            perturb_func=perturb,
            perturb_radius=self.perturb_radius,
            n_perturb_samples=self.n_perturb_samples,
            norm_ord=self.norm_ord,
            max_examples_per_batch=self.max_examples_per_batch,
            additional_forward_args=(source, target),
        )
        self.values.append(values.to(x.dtype))

    def compute(self) -> dict[str, Tensor]:
        return {"sensitivity_max": dim_zero_cat(self.values)}
