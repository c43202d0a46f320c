"""Measure CEM on real MNIST test digits: PN/PP validity, sparsity, and batched vs one-at-a-time time.

    python scripts/measure_cem.py --n 100 --single 4 --iterations 100 --searches 4 \\
        --autoencoder outputs/artifacts/autoencoder-<hash> --figure docs/figures/cem_mnist.png

Writes a JSON summary (--out) and prints a markdown table (dated history goes to docs/notes/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganmex import load_classifier
from ganmex.artifacts import newest_artifact
from ganmex.data.mnist_test import load_mnist_test
from ganmex.explain.cem import ContrastiveExplainer, cem_scores
from ganmex.models.loading import load_autoencoder
from ganmex.report.cem_figures import save_pp_pn_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=None, help="classifier-<hash> dir (default: the newest)")
    parser.add_argument("--artifacts", default="outputs/artifacts")
    parser.add_argument("--autoencoder", default=None, help="autoencoder-<hash> dir; omit with --gamma 0")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--single", type=int, default=4, help="images explained one at a time for the ratio")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=9)
    parser.add_argument("--kappa", type=float, default=10.0)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", default=None)
    parser.add_argument("--out", default="outputs/cem_measure.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    classifier = load_classifier(args.classifier or newest_artifact(args.artifacts, "classifier"))
    autoencoder = load_autoencoder(args.autoencoder) if args.gamma > 0 else None
    images, labels = load_mnist_test(args.data_root, args.n)
    accuracy = float((classifier(images).argmax(1) == labels).float().mean())
    settings = dict(
        kappa=args.kappa,
        beta=args.beta,
        gamma=args.gamma,
        iterations=args.iterations,
        n_searches=args.searches,
    )
    summary: dict = {"settings": {**settings, "n": args.n, "threads": args.threads}, "accuracy": accuracy}
    results = {}
    for mode in ("PN", "PP"):
        explainer = ContrastiveExplainer(classifier, autoencoder, mode=mode, **settings)
        started = time.perf_counter()
        results[mode] = explainer.explain(images)
        batched = (time.perf_counter() - started) / args.n
        explainer.progress = False
        started = time.perf_counter()
        for i in range(args.single):
            explainer.explain(images[i : i + 1])
        single = (time.perf_counter() - started) / max(args.single, 1)
        summary[mode] = {
            **cem_scores(results[mode]),
            "time_per_image_batched_s": round(batched, 3),
            "time_per_image_single_s": round(single, 3),
            "speedup": round(single / batched, 1),
        }
        print(mode, json.dumps(summary[mode], indent=1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    if args.figure:
        save_pp_pn_figure(Path(args.figure), results["PP"], results["PN"])
    pn, pp = summary["PN"], summary["PP"]
    print("\n| mode | validity | mean ‖δ‖₁ | sparsity | s/image batched | s/image one-at-a-time | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, s in (("PN", pn), ("PP", pp)):
        key = f"cem_{name.lower()}"
        print(
            f"| {name} | {s[f'{key}/validity']:.2f} | {s[f'{key}/l1']:.2f} | {s[f'{key}/sparsity']:.3f} | "
            f"{s['time_per_image_batched_s']} | {s['time_per_image_single_s']} | {s['speedup']}x |"
        )


if __name__ == "__main__":
    main()
