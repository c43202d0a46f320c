"""Benchmark: our batched deletion curve (PerturbationCurve) against Quantus PixelFlipping, same run
(ganmex.bench.quantus_deletion); with --road, ROAD's imputation solvers (ganmex.bench.road).

Same embedded-MNIST test images, same classifier (the newest finished one, else an untrained mnist_cnn),
same attributions, same steps and the same reference (Quantus "black" = each image's minimum). Reports the
speed ratio, the largest absolute difference between the two curves, and the forward-pass bound.

    python scripts/bench_metrics.py                 # print the numbers
    python scripts/bench_metrics.py --write         # also append them to docs/notes/<today>-bench-metrics.md
    python scripts/bench_metrics.py --road --images 50 --write
"""

from __future__ import annotations

import argparse

import torch

from ganmex.bench.notes import append_note
from ganmex.bench.quantus_deletion import deletion_bench
from ganmex.bench.road import road_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--features-in-step", type=int, default=8)
    parser.add_argument(
        "--max-batch", type=int, default=1024, help="perturbed images per forward pass (ours)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--write", action="store_true", help="also append to docs/notes/<today>-bench-metrics.md"
    )
    parser.add_argument("--road", action="store_true", help="ROAD: CG vs sparse LU imputation instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.road:
        lines = road_bench(args.images, args.max_batch, args.repeats, args.threads)
    else:
        lines = deletion_bench(args.images, args.features_in_step, args.max_batch, args.repeats, args.threads)
    print("\n".join(lines))
    if args.write:
        print(f"appended to {append_note(lines, 'bench-metrics')}")


if __name__ == "__main__":
    main()
