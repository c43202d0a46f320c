"""How much a decoy-MNIST classifier relies on the swatch: is the swatch the deciding evidence?
(ganmex.bench.decoy_evidence)

    python scripts/decoy_evidence.py --classifier outputs/artifacts/classifier-<hash> [--seed 0]

On the decoy test split each swatch is repainted with the shade of class (y + 1) mod K; the share of
predictions that follow the swatch (predict y + 1) rather than the label (predict y) says whether the
swatch decides. Where a GAN's edits go is `edit_in_mask` of
`python evaluate.py experiment=decoy_mnist mode=gan_quality` (docs/gan.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganmex.bench.decoy_evidence import run_decoy_evidence


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (places the swatches)")
    parser.add_argument("--labels", choices=("digit", "swatch"), default="swatch", help="dataset.labels")
    args = parser.parse_args()
    print(json.dumps(run_decoy_evidence(args.classifier, args.seed, args.labels), indent=2))


if __name__ == "__main__":
    main()
