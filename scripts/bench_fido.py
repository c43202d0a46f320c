"""Seconds per image of FIDO / BBMP saliency on CPU, batched vs one image at a time (as the original ran).

    python scripts/bench_fido.py [--classifier outputs/artifacts/classifier-<hash>] [--batch 32] [--single 4]
        [--threads 1] [--methods fido_ssr fido_sdr bbmp_ssr bbmp_sdr] [--infill mean local_mean]

Hyper-parameters are the YAML defaults (conf/attribution/<method>.yaml: 100 Adam steps, 4 MC samples for
FIDO); in-fillers come from conf/infill/. Inputs: the first `--batch` real MNIST test digits, target = their
runner-up class. Prints a markdown table (dated history goes to docs/notes/).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--single", type=int, default=4, help="images timed one at a time (0 skips)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["fido_ssr", "fido_sdr", "bbmp_ssr", "bbmp_sdr"])
    parser.add_argument("--infill", nargs="+", default=["mean", "local_mean"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from fido_grid import load_digits, newest

    from ganmex import load_classifier

    classifier = args.classifier or newest("classifier")
    if classifier is None:
        raise SystemExit("no classifier artifact; train one with `python train.py stage=classifier`")
    model = load_classifier(classifier)
    x, y, t = load_digits(args.batch, model)
    print(f"{len(x)} digits, classifier {classifier.name}, {torch.get_num_threads()} thread(s)\n")
    print("| method | in-fill | steps x MC samples | batched s/image | one-at-a-time s/image | speed-up |")
    print("|---|---|---|---|---|---|")
    for method_name in args.methods:
        for fill_name in args.infill:
            node = OmegaConf.merge({"seed": 0}, OmegaConf.load(CONF / "attribution" / f"{method_name}.yaml"))
            method = instantiate(node[method_name])
            method.infiller = instantiate(
                OmegaConf.merge({"seed": 0}, {"n": OmegaConf.load(CONF / "infill" / f"{fill_name}.yaml")}).n
            )
            start = time.perf_counter()
            method(model, x, y, t)
            batched = (time.perf_counter() - start) / len(x)
            single = float("nan")
            if args.single:
                start = time.perf_counter()
                for i in range(args.single):
                    method(model, x[i : i + 1], y[i : i + 1], t[i : i + 1])
                single = (time.perf_counter() - start) / args.single
            print(
                f"| {method_name} | {fill_name} | {method.epochs} x {method.samples} | {batched:.3f} | "
                f"{single:.3f} | {single / batched:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
