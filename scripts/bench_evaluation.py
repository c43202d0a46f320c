"""Evaluation throughput: images/s of the evaluate stage at the defaults, each metric's share of the time,
the estimated time for a whole test split, and the bound of the classifier's own passes
(ganmex.pipeline.evaluation_bench).

    python scripts/bench_evaluation.py [--rounds 1 --split-images 10000 --threads 1] [OVERRIDE ...]
        [--variant NAME:KEY=VALUE[,KEY=VALUE...] ...]

Needs the finished classifier (and GAN, oracle) artifacts of `python train.py`; OVERRIDEs are the
evaluate config's, e.g. `evaluation.num_images=20` or `classifier.artifact=<dir>`. Each `--variant` adds
its overrides on top, and runs alternate with the default's in every round.
"""

from __future__ import annotations

import argparse

from ganmex.pipeline.evaluation_bench import benchmark_evaluation
from ganmex.variants import parse_variant


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="evaluate config overrides, KEY=VALUE")
    parser.add_argument(
        "--split-images", type=int, default=10_000, help="estimate for this many images (MNIST's test split)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (medians are reported)")
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE[,...] (repeatable)")
    args = parser.parse_args()
    try:
        variants = dict(parse_variant(text) for text in args.variant)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(benchmark_evaluation(args.overrides, variants, args.rounds, args.split_images, args.threads))


if __name__ == "__main__":
    main()
