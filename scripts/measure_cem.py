"""Measure CEM on real MNIST test digits: PN/PP validity, sparsity, and batched vs one-at-a-time time
(ganmex.bench.cem).

    python scripts/measure_cem.py --n 100 --single 4 --iterations 100 --searches 4 \\
        --autoencoder outputs/artifacts/autoencoder-<hash> --figure docs/figures/cem_mnist.png

Writes a JSON summary (--out) and prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganmex.bench.cem import run_cem_measure
from ganmex.bench.inputs import MNIST_DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default=None, help="classifier-<hash> dir (default: the newest)")
    parser.add_argument("--artifacts", type=Path, default=Path("outputs/artifacts"))
    parser.add_argument("--autoencoder", default=None, help="autoencoder-<hash> dir; omit with --gamma 0")
    parser.add_argument("--data-root", type=Path, default=MNIST_DATA)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--single", type=int, default=4, help="images explained one at a time for the ratio")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=9)
    parser.add_argument("--kappa", type=float, default=10.0)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("outputs/cem_measure.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(
        kappa=args.kappa,
        beta=args.beta,
        gamma=args.gamma,
        iterations=args.iterations,
        n_searches=args.searches,
    )
    try:
        table = run_cem_measure(
            settings,
            args.classifier,
            args.autoencoder,
            args.n,
            args.single,
            args.out,
            args.figure,
            args.data_root,
            args.artifacts,
        )
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error)) from None
    print(table)


if __name__ == "__main__":
    main()
