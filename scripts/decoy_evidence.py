"""How much a decoy-MNIST classifier relies on the swatch: is the swatch the deciding evidence?

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

import torch

from ganmex import load_classifier
from ganmex.data.decoy import DecoyMNISTDataModule
from ganmex.data.embedded import EMBEDDED_SPLITS, MNIST_LAYOUT

SWATCH_SIZE, SHADE_LOW, SHADE_HIGH = 4, 0.1, 1.0  # conf/dataset/decoy_mnist.yaml


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (places the swatches)")
    parser.add_argument("--labels", choices=("digit", "swatch"), default="swatch", help="dataset.labels")
    args = parser.parse_args()
    data = DecoyMNISTDataModule(
        **MNIST_LAYOUT,
        **EMBEDDED_SPLITS,
        swatch_size=SWATCH_SIZE,
        shade_low=SHADE_LOW,
        shade_high=SHADE_HIGH,
        seed=args.seed,
        labels=args.labels,
    )
    test = data.dataset("test")
    masks = data.ground_truth_masks("test")[:, None]
    images, labels = test.images.float() / 255.0, test.labels.long()
    f = load_classifier(args.classifier).eval()
    k = MNIST_LAYOUT["num_classes"]
    swapped = torch.where(masks, data.shades[(labels + 1) % k].view(-1, 1, 1, 1), images)
    with torch.no_grad():
        clean = f(images).argmax(1)
        moved = f(swapped).argmax(1)
    result = {
        "clean_accuracy": float((clean == labels).float().mean()),
        "follows_swatch": float((moved == (labels + 1) % k).float().mean()),
        "follows_digit": float((moved == labels).float().mean()),
        "swatch_area": float(masks.float().mean()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
