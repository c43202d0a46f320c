"""Overhead of the Classifier.forward input check: mnist_cnn, batch 64, 1 thread, eval, no_grad
(ganmex.bench.input_check).

    python scripts/bench_input_check.py [--batch 64] [--rounds 40] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from ganmex.bench.input_check import BATCH, ROUNDS, WARMUP, input_check_cost


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(input_check_cost(args.batch, args.warmup, args.rounds).summary())


if __name__ == "__main__":
    main()
