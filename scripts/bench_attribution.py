"""Images per second of each attribution method at batch 64, vs calling Captum one image at a time
(ganmex.bench.attribution).

    python scripts/bench_attribution.py [--artifact outputs/artifacts/classifier-<hash>] [--batch 64]
        [--methods integrated_gradients deeplift ...] [--device cpu|cuda] [--single 8]

Ours: `method.attribute` on the whole batch (one-vs-one pair output, zero baseline). Reference: the
same Captum class with the same options on the same pair output, called image by image (`--single`
images, to keep it short). LRP has no reference: ours already runs Captum once per (source, target) group.
Prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch

from ganmex.bench.attribution import METHODS, run_attribution_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--artifact", default=None, help="classifier artifact dir (default: the newest, else random)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--single", type=int, default=8, help="images for the one-by-one Captum reference")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        run_attribution_bench(args.artifact, args.batch, args.single, args.methods, args.device, args.threads)
    )


if __name__ == "__main__":
    main()
