"""GAN training throughput of the real GanmexModule (ganmex.training.throughput, ganmex.bench.gan): images
per second, its min-max over rounds, and the bound (images/s if a batch cost only its networks' own passes).

    python scripts/bench_gan.py [--batches 40 --warmup 5 --rounds 3 --threads 2]
        [--variant gp4:loss.gp_every=4 ...] [--set trainer.max_steps=6000 ...]
    python scripts/bench_gan.py --busy [--ungoverned]   # alone vs beside one CPU-bound process

`--variant NAME:KEY=VALUE[,KEY=VALUE...]` (repeatable) also times those overrides of conf/gan/stargan.yaml
in the same alternating rounds and reports each one's speed relative to the YAML as it is. `--busy` times
the slow-down beside another CPU-bound process, with the stages' thread governor unless `--ungoverned`.
"""

from __future__ import annotations

import argparse
import json

import torch

from ganmex.bench.gan import run_gan_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE[,...] (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE applied to every run")
    parser.add_argument("--busy", action="store_true", help="alone vs beside one CPU-bound process")
    parser.add_argument("--ungoverned", action="store_true", help="--busy without the thread governor")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        result = run_gan_bench(
            args.variant, args.set, args.batches, args.warmup, args.rounds, args.busy, not args.ungoverned
        )
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
