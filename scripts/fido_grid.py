"""FIDO grid on real MNIST test digits: {FIDO, BBMP} x {SSR, SDR} x in-fill {mean, blur, local mean,
autoencoder, ganmex} (ganmex.bench.fido_grid).

    python scripts/fido_grid.py [--classifier outputs/artifacts/classifier-<hash>]
        [--autoencoder outputs/artifacts/autoencoder-<hash>] [--gan outputs/artifacts/gan-<hash>]
        [--n 16] [--epochs 100] [--threads 2] [--out outputs/fido_grid]

Hyper-parameters are the shipped ones (conf/attribution/, conf/infill/); each digit's target is its
runner-up class. A missing autoencoder / gan artifact (the newest finished one when not given) drops that
column with a warning. Writes to --out: `saliency.pt` (maps, digits, labels, targets), `grid.png` (first 4
digits) and `results.md`: time per image, and the evaluation's deletion metric (normalised AUC, lower = more
faithful; flip fraction) with removed pixels in-filled by the map's own in-filler and by black.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganmex.bench.fido_grid import run_fido_grid
from ganmex.bench.inputs import REPO


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, default=None)
    parser.add_argument("--autoencoder", type=Path, default=None)
    parser.add_argument("--gan", type=Path, default=None)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=None, help="override every method's optimisation steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "fido_grid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        text = run_fido_grid(
            args.out, args.classifier, args.autoencoder, args.gan, args.n, args.epochs, args.seed
        )
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    print(text)
    print(f"wrote {args.out}/results.md, saliency.pt, grid.png")


if __name__ == "__main__":
    main()
