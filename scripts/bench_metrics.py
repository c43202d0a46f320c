"""Benchmark: our batched deletion curve (PerturbationCurve) against Quantus PixelFlipping, same run.

Same 256 embedded-MNIST test images, same classifier, same saliency attributions, same steps and the same
reference (Quantus "black" = each image's minimum). Reports the speed ratio, the largest absolute difference
between the two curves, and the forward-pass bound: the time the same number of forward passes alone takes.
With --road: the ROAD deletion curve (20 steps, noisy linear imputation) with the conjugate-gradient solver
against the block-diagonal sparse LU solver, per image and curve, same images and attributions.

    python scripts/bench_metrics.py                 # print the numbers
    python scripts/bench_metrics.py --write         # also write docs/notes/<today>-bench-metrics.md
    python scripts/bench_metrics.py --road --images 50 --write
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# quantus 0.6 calls np.trapz, which NumPy 2.4 removed: alias the renamed function, as
# tests/unit/test_quantus_reference.py does
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid

import quantus  # noqa: E402

from ganmex.artifacts import newest_artifact  # noqa: E402
from ganmex.data.embedded import embedded_mnist  # noqa: E402
from ganmex.metrics import InputMinimumReference, NoisyLinearImputer, PerturbationCurve  # noqa: E402
from ganmex.models.classifiers import mnist_cnn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "outputs" / "artifacts"


def load_model() -> tuple[torch.nn.Module, str]:
    """The newest finished classifier artifact under outputs/artifacts, else an untrained mnist_cnn."""
    try:
        artifact = newest_artifact(ARTIFACTS, "classifier")
    except FileNotFoundError as err:
        print(f"{err}; using an untrained mnist_cnn")
    else:
        from ganmex.models.loading import load_classifier

        try:
            return load_classifier(artifact), f"trained mnist_cnn ({artifact.name})"
        except (FileNotFoundError, RuntimeError, KeyError) as err:
            print(f"could not load {artifact}: {err}; using an untrained mnist_cnn")
    torch.manual_seed(0)
    return mnist_cnn(1, 10, 28, [0.1307], [0.3081]).eval(), "untrained mnist_cnn (no artifact found)"


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = embedded_mnist(seed=0).dataset("test")
    images = data.images[:n]
    images = images.float() / 255.0 if not images.is_floating_point() else images.float()
    return images, data.labels[:n].long()


def gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    logit = model(x).gather(1, y.view(-1, 1)).sum()
    return torch.autograd.grad(logit, x)[0]


# saliency ranks background pixels among digit pixels; grad x input gives black pixels zero attribution,
# so MoRF deletion reaches them last and most late states equal their predecessors
ATTRIBUTIONS = {
    "saliency": lambda model, x, y: gradient(model, x, y).abs(),
    "grad_x_input": lambda model, x, y: gradient(model, x, y) * x,
}


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--features-in-step", type=int, default=8)
    parser.add_argument(
        "--max-batch", type=int, default=1024, help="perturbed images per forward pass (ours)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="also write docs/notes/<today>-bench-metrics.md")
    parser.add_argument("--road", action="store_true", help="ROAD: CG vs sparse LU imputation instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = bench_road(args) if args.road else bench_deletion(args)
    print("\n".join(lines))
    if args.write:
        path = ROOT / "docs" / "notes" / f"{datetime.date.today()}-bench-metrics.md"  # dated history
        path.parent.mkdir(exist_ok=True)
        with path.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"appended to {path}")


ROAD_SOLVERS = {
    "before: conjugate gradients on the whole batch (`active_set: false`)": {
        "solver": "cg",
        "active_set": False,
    },
    "after: conjugate gradients, converged images leave the batch (default)": {"solver": "cg"},
    "one block-diagonal sparse LU (`solver: sparse`)": {"solver": "sparse"},
}


def bench_road(args: argparse.Namespace) -> list[str]:
    """Seconds per image and 20-step ROAD deletion curve for each solver, same images, same run."""
    model, model_name = load_model()
    x, y = load_images(args.images)
    a = ATTRIBUTIONS["saliency"](model, x, y).detach()
    n = x.shape[0]
    results = {}
    for name, options in ROAD_SOLVERS.items():

        def run(options: dict = options) -> np.ndarray:
            metric = PerturbationCurve(num_steps=20, contrast="logit_c", max_batch=args.max_batch)
            metric.update(model, x, a, y, y, NoisyLinearImputer(seed=0, **options))
            return metric.compute()["curve"].double().numpy()

        results[name] = best_time(run, args.repeats)
    t_before, c_before = next(iter(results.values()))
    machine = platform.processor() or platform.machine()
    lines = [
        "## ROAD imputation cost per image and curve",
        "",
        f"Command: `python scripts/bench_metrics.py --road --images {n} --write` ({machine}, {args.threads} "
        f"torch thread(s), CPU only, 2-core machine shared with other jobs; best of {args.repeats}, "
        f"all solvers in the same run).",
        f"Setup: {n} embedded-MNIST test images, {model_name}, saliency attributions, a 20-step MoRF "
        f"deletion curve (21 states per image, forward passes included) with NoisyLinearImputer "
        f"(noise_std 0.01, seed 0, tol 1e-5).",
        "",
        "| solver | time (s) | s per image and curve | speed-up vs before | max abs curve diff vs before |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (t, curve) in results.items():
        diff = float(np.abs(curve - c_before).max())
        lines.append(f"| {name} | {t:.3f} | {t / n:.4f} | {t_before / t:.2f}x | {diff:.1e} |")
    return [*lines, ""]


def bench_deletion(args: argparse.Namespace) -> list[str]:
    """Our deletion curve against Quantus PixelFlipping, and the forward-pass bound."""

    model, model_name = load_model()
    x, y = load_images(args.images)
    n, step = x.shape[0], args.features_in_step
    points = 784 // step + 1  # our curve also scores the untouched image
    pool = x.repeat(max(1, args.max_batch // n), 1, 1, 1)[: args.max_batch]
    forwards = [0]

    def counting(inp: torch.Tensor) -> torch.Tensor:
        forwards[0] += inp.shape[0]
        return model(inp)

    def ours(a: torch.Tensor, skip_unchanged: bool) -> np.ndarray:
        forwards[0] = 0
        metric = PerturbationCurve(
            num_steps=None,
            features_per_step=step,
            contrast="logit_c",
            max_batch=args.max_batch,
            skip_unchanged=skip_unchanged,
        )
        metric.update(counting, x, a, y, y, InputMinimumReference())
        return metric.compute()["curve"].double().numpy()

    def theirs(a: torch.Tensor) -> np.ndarray:
        metric = quantus.PixelFlipping(
            features_in_step=step, normalise=False, abs=False, disable_warnings=True
        )
        return np.asarray(
            metric(model, x.numpy(), y.numpy(), a_batch=a.numpy(), softmax=False, device="cpu", batch_size=n),
            dtype=np.float64,
        )

    def forward_only() -> None:
        with torch.no_grad():
            total = n * points
            for start in range(0, total, args.max_batch):
                model(pool[: min(args.max_batch, total - start)])

    t_bound, _ = best_time(forward_only, args.repeats)
    machine = platform.processor() or platform.machine()
    lines = [
        "## Metrics: deletion curve vs Quantus PixelFlipping",
        "",
        f"Command: `python scripts/bench_metrics.py --write` ({machine}, {args.threads} torch thread(s), "
        f"CPU only, 2-core machine shared with other jobs; best of {args.repeats}).",
        f"Setup: {n} embedded-MNIST test images, {model_name}, {step} pixels per step ({784 // step} steps), "
        f"reference = each image's minimum (Quantus 'black'), scored output logit_c. "
        f"Forward-pass bound: {n * points} images through the model alone in batches of {args.max_batch}: "
        f"{t_bound:.3f} s.",
        "",
        "| attributions | implementation | forward passes (images) | time (s) | Quantus time / this | "
        "this / bound | max abs diff vs Quantus |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for name, attribute in ATTRIBUTIONS.items():
        a = attribute(model, x, y).detach()
        t_quantus, curve_q = best_time(lambda a=a: theirs(a), args.repeats)
        t_all, curve_all = best_time(lambda a=a: ours(a, False), args.repeats)
        n_all = forwards[0]
        t_ours, curve = best_time(lambda a=a: ours(a, True), args.repeats)
        n_skip = forwards[0]
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
        for impl, count, t, diff in rows:
            lines.append(
                f"| {name} | {impl} | {count} | {t:.3f} | {t_quantus / t:.2f}x | {t / t_bound:.2f}x "
                f"| {diff:.1e} |"
            )
        verdicts.append(
            f"{name}: {t_quantus / t_ours:.2f}x faster than Quantus (goal >= 3x: "
            f"{'met' if t_quantus / t_ours >= 3 else 'NOT met'}); "
            f"{t_ours / t_bound:.2f}x / {t_all / t_bound:.2f}x the forward-pass bound with / without skip "
            f"(goal <= 1.5x: "
            f"{'met' if max(t_ours, t_all) / t_bound <= 1.5 else 'NOT met'})."
        )
    lines += ["", *[f"- {v}" for v in verdicts], ""]
    return lines


if __name__ == "__main__":
    main()
