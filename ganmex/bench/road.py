"""ROAD's imputation cost: the same 20-step deletion curve with each solver of NoisyLinearImputer, same
images and attributions in one run, so that the solvers are compared under the same load."""

from __future__ import annotations

import platform

import numpy as np
import torch

from ganmex.bench.inputs import classifier_or_untrained, embedded_test_images, saliency
from ganmex.bench.timing import best_time
from ganmex.metrics import NoisyLinearImputer, PerturbationCurve
from ganmex.report.tables import markdown_table

ROAD_STEPS = 20
SOLVERS = {
    "before: conjugate gradients on the whole batch (`active_set: false`)": {
        "solver": "cg",
        "active_set": False,
    },
    "after: conjugate gradients, converged images leave the batch (default)": {"solver": "cg"},
    "one block-diagonal sparse LU (`solver: sparse`)": {"solver": "sparse"},
}


def road_curves(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attributions: torch.Tensor,
    max_batch: int,
    repeats: int,
) -> dict[str, tuple[float, np.ndarray]]:
    """Solver label -> (best seconds of `repeats`, the curves (N, 21)) of a ROAD deletion with it."""
    results = {}
    for name, options in SOLVERS.items():

        def run(options: dict = options) -> np.ndarray:
            metric = PerturbationCurve(num_steps=ROAD_STEPS, contrast="logit_c", max_batch=max_batch)
            metric.update(model, x, attributions, y, y, NoisyLinearImputer(seed=0, **options))
            return metric.compute()["curve"].double().numpy()

        results[name] = best_time(run, repeats)
    return results


def road_bench(images: int = 256, max_batch: int = 1024, repeats: int = 3, threads: int = 1) -> list[str]:
    """Markdown lines: seconds per image and curve for each solver, and each curve's distance to the first."""
    model, model_name = classifier_or_untrained()
    x, y = embedded_test_images(images)
    results = road_curves(model, x, y, saliency(model, x, y).detach(), max_batch, repeats)
    n = x.shape[0]
    t_first, c_first = next(iter(results.values()))
    machine = platform.processor() or platform.machine()
    body = [
        [
            name,
            f"{t:.3f}",
            f"{t / n:.4f}",
            f"{t_first / t:.2f}x",
            f"{float(np.abs(curve - c_first).max()):.1e}",
        ]
        for name, (t, curve) in results.items()
    ]
    header = [
        "solver",
        "time (s)",
        "s per image and curve",
        "speed-up vs before",
        "max abs curve diff vs before",
    ]
    return [
        "## ROAD imputation cost per image and curve",
        "",
        f"Command: `python scripts/bench_metrics.py --road --images {n} --write` ({machine}, {threads} "
        f"torch thread(s), CPU only; best of {repeats}, all solvers in the same run).",
        f"Setup: {n} embedded-MNIST test images, {model_name}, saliency attributions, a {ROAD_STEPS}-step "
        f"MoRF deletion curve ({ROAD_STEPS + 1} states per image, forward passes included) with "
        f"NoisyLinearImputer (noise_std 0.01, seed 0, tol 1e-5).",
        "",
        *markdown_table(header, body, (False, True, True, True, True)),
        "",
    ]
