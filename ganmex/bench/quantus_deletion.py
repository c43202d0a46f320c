"""Our batched deletion curve (PerturbationCurve) against Quantus PixelFlipping on the same images,
classifier, attributions, steps and reference (Quantus "black" = each image's minimum): the speed ratio,
the largest curve difference, and the forward-pass bound (the same number of forward passes alone)."""

from __future__ import annotations

import platform
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ganmex.bench.inputs import GRADIENT_ATTRIBUTIONS, classifier_or_untrained, embedded_test_images
from ganmex.bench.timing import best_time
from ganmex.metrics import InputMinimumReference, PerturbationCurve
from ganmex.report.tables import markdown_table

# the goals the batched curve was built to: at least this much faster than Quantus, and within this
# factor of the forward passes it cannot avoid
SPEEDUP_GOAL, BOUND_GOAL = 3.0, 1.5


def quantus_pixel_flipping(model: nn.Module, x: Tensor, y: Tensor, a: Tensor, step: int) -> np.ndarray:
    """Quantus 0.6 PixelFlipping curves (N, steps), one batch of all images."""
    if not hasattr(np, "trapz"):  # quantus 0.6 calls np.trapz, which NumPy 2.4 renamed
        np.trapz = np.trapezoid
    import quantus

    metric = quantus.PixelFlipping(features_in_step=step, normalise=False, abs=False, disable_warnings=True)
    out = metric(
        model, x.numpy(), y.numpy(), a_batch=a.numpy(), softmax=False, device="cpu", batch_size=len(x)
    )
    return np.asarray(out, dtype=np.float64)


class CountingModel:
    """The model, counting the images it scores (forward passes are what the curve's cost is made of)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.images = model, 0

    def __call__(self, x: Tensor) -> Tensor:
        self.images += x.shape[0]
        return self.model(x)


def our_curves(
    model: nn.Module, x: Tensor, y: Tensor, a: Tensor, step: int, max_batch: int, skip_unchanged: bool
) -> tuple[np.ndarray, int]:
    """(PerturbationCurve's logit_c curves (N, steps + 1) against each image's minimum, images scored)."""
    counting = CountingModel(model)
    metric = PerturbationCurve(
        num_steps=None,
        features_per_step=step,
        contrast="logit_c",
        max_batch=max_batch,
        skip_unchanged=skip_unchanged,
    )
    metric.update(counting, x, a, y, y, InputMinimumReference())
    return metric.compute()["curve"].double().numpy(), counting.images


def forward_bound(model: nn.Module, x: Tensor, images: int, max_batch: int) -> Callable[[], None]:
    """A call that pushes `images` copies of x's images through the model in batches of max_batch."""
    pool = x.repeat(max(1, max_batch // len(x)), 1, 1, 1)[:max_batch]

    def run() -> None:
        with torch.no_grad():
            for start in range(0, images, max_batch):
                model(pool[: min(max_batch, images - start)])

    return run


def deletion_bench(
    images: int = 256, features_in_step: int = 8, max_batch: int = 1024, repeats: int = 3, threads: int = 1
) -> list[str]:
    """Markdown lines: per attribution, ours (with and without skipping unchanged states) and Quantus."""
    model, model_name = classifier_or_untrained()
    x, y = embedded_test_images(images)
    n, step = x.shape[0], features_in_step
    pixels = x[0].numel()
    points = pixels // step + 1  # our curve also scores the untouched image
    t_bound, _ = best_time(forward_bound(model, x, n * points, max_batch), repeats)
    machine = platform.processor() or platform.machine()
    lines = [
        "## Metrics: deletion curve vs Quantus PixelFlipping",
        "",
        f"Command: `python scripts/bench_metrics.py --write` ({machine}, {threads} torch thread(s), "
        f"CPU only; best of {repeats}).",
        f"Setup: {n} embedded-MNIST test images, {model_name}, {step} pixels per step "
        f"({pixels // step} steps), "
        f"reference = each image's minimum (Quantus 'black'), scored output logit_c. "
        f"Forward-pass bound: {n * points} images through the model alone in batches of {max_batch}: "
        f"{t_bound:.3f} s.",
        "",
    ]
    header = [
        "attributions",
        "implementation",
        "forward passes (images)",
        "time (s)",
        "Quantus time / this",
        "this / bound",
        "max abs diff vs Quantus",
    ]
    body, verdicts = [], []
    for name, attribute in GRADIENT_ATTRIBUTIONS.items():
        a = attribute(model, x, y).detach()
        t_quantus, curve_q = best_time(lambda a=a: quantus_pixel_flipping(model, x, y, a, step), repeats)
        t_all, (curve_all, n_all) = best_time(
            lambda a=a: our_curves(model, x, y, a, step, max_batch, False), repeats
        )
        t_ours, (curve, n_skip) = best_time(
            lambda a=a: our_curves(model, x, y, a, step, max_batch, True), repeats
        )
        rows = [
            (
                "ganmex, default (skip unchanged states)",
                n_skip,
                t_ours,
                float(np.abs(curve[:, 1:] - curve_q).max()),
            ),
            ("ganmex, skip_unchanged=False", n_all, t_all, float(np.abs(curve_all[:, 1:] - curve_q).max())),
            (f"Quantus 0.6 PixelFlipping (batch_size={n})", n * (points - 1), t_quantus, 0.0),
        ]
        body += [
            [
                name,
                impl,
                str(count),
                f"{t:.3f}",
                f"{t_quantus / t:.2f}x",
                f"{t / t_bound:.2f}x",
                f"{diff:.1e}",
            ]
            for impl, count, t, diff in rows
        ]
        verdicts.append(
            f"{name}: {t_quantus / t_ours:.2f}x faster than Quantus (goal >= {SPEEDUP_GOAL:g}x: "
            f"{'met' if t_quantus / t_ours >= SPEEDUP_GOAL else 'NOT met'}); "
            f"{t_ours / t_bound:.2f}x / {t_all / t_bound:.2f}x the forward-pass bound with / without skip "
            f"(goal <= {BOUND_GOAL:g}x: "
            f"{'met' if max(t_ours, t_all) / t_bound <= BOUND_GOAL else 'NOT met'})."
        )
    numeric = (False, False, True, True, True, True, True)
    return [*lines, *markdown_table(header, body, numeric), "", *[f"- {v}" for v in verdicts], ""]
