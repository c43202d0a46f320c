"""Seconds per image of FIDO / BBMP saliency, batched vs one image at a time (ganmex.bench.fido).

    python scripts/bench_fido.py [--classifier outputs/artifacts/classifier-<hash>] [--batch 32] [--single 4]
        [--threads 1] [--methods fido_ssr fido_sdr bbmp_ssr bbmp_sdr] [--infill mean local_mean]

Hyper-parameters are the YAML defaults (conf/attribution/<method>.yaml: 100 Adam steps, 4 MC samples for
FIDO); in-fillers come from conf/infill/. Inputs: the first `--batch` correctly classified real MNIST test
digits, target = their runner-up class. Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganmex.bench.fido import INFILLS, METHODS, run_fido_bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--single", type=int, default=4, help="images timed one at a time (0 skips)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--infill", nargs="+", default=list(INFILLS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        print(run_fido_bench(args.classifier, args.batch, args.single, args.methods, args.infill))
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
