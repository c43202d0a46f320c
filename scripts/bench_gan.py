"""GAN training throughput of the real GanmexModule (ganmex.training.throughput), images per second.

    python scripts/bench_gan.py [--batches 20 --warmup 3 --rounds 3 --batch-size 20 --threads 1]
        [--variant gp4:loss.gp_every=4 ...]

`--variant NAME:KEY=VALUE[,KEY=VALUE...]` (repeatable) also times those overrides of conf/gan/stargan.yaml
in the same alternating rounds and reports each one's speed relative to the YAML as it is.
"""

from __future__ import annotations

import argparse
import json

import torch
from omegaconf import OmegaConf

from ganmex.training.throughput import gan_throughput
from ganmex.variants import parse_variant

CONFIG = "conf/gan/stargan.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=20, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: gan.batch_size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE[,...] (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gan = OmegaConf.load(CONFIG)
    if args.batch_size:
        gan.batch_size = args.batch_size
    variants = dict(parse_variant(text) for text in args.variant)
    print(json.dumps(gan_throughput(gan, variants, args.batches, args.warmup, args.rounds), indent=2))


if __name__ == "__main__":
    main()
