"""Validity and L1 proximity of GANMEX counterfactuals vs MDTS on the real MNIST test set.

For the first `--n` real test digits and every target t != c (c = true label):
  validity  = fraction of pairs where argmax f(x') = t,
  proximity = mean per-pixel |x' - x| in [0, 1] pixels,
with x' = G(x, t) (GANMEX) or the nearest training digit that f assigns to t (MDTS, from
`ganmex.explain.baselines.MDTS` over the GAN's training split).

    python scripts/measure_gan.py --gan outputs/artifacts/gan-<hash> [--n 1000] [--out gan_measure.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ganmex import load_classifier
from ganmex.artifacts import load_artifact_dir
from ganmex.data.torchvision_sets import TorchvisionDataModule
from ganmex.explain.baselines import MDTS, BaselineContext
from ganmex.models.loading import load_counterfactual_generator
from ganmex.pipeline.build import build_datamodule

REPO = Path(__file__).resolve().parents[1]


def latest_gan(root: Path) -> Path:
    found = sorted(
        (p for p in root.glob("gan-*") if not p.name.endswith(".partial")), key=lambda p: p.stat().st_mtime
    )
    if not found:
        sys.exit(f"no finished gan-<hash> artifact under {root}; run `python train.py gan=stargan` first")
    return found[-1]


def real_test_digits(data_root: Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    dm = TorchvisionDataModule(
        name="mnist",
        root=str(data_root),
        download=False,
        num_classes=10,
        channels=1,
        image_size=28,
        mean=[0.1307],
        std=[0.3081],
    )
    data = dm.dataset("test")
    return data.images[:n].float() / 255.0, data.labels[:n]


def training_digits(gan_config: dict) -> torch.Tensor:
    """The un-augmented training split the GAN (and classifier) saw, as float [0, 1]."""
    from omegaconf import OmegaConf

    dm = build_datamodule(OmegaConf.create(gan_config["dataset"]))
    dm.setup("fit")
    images = dm.dataset("train").images
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def measure(make, classifier, images, labels, num_classes: int, batch_size: int, name: str) -> dict:
    hits, dist, pairs = 0, 0.0, 0
    for t in tqdm(range(num_classes), desc=name):
        keep = labels != t
        x = images[keep]
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            tb = torch.full((len(xb),), t, dtype=torch.long)
            out = make(xb, tb)
            hits += int((classifier(out).argmax(1) == t).sum())
            dist += float((out - xb).abs().flatten(1).mean(1).sum())
            pairs += len(xb)
    return {"validity": hits / pairs, "proximity_l1": dist / pairs, "pairs": pairs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gan", type=Path, default=None, help="gan-<hash> artifact (default: newest)")
    parser.add_argument("--n", type=int, default=1000, help="number of real test digits")
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data", help="dir with MNIST/raw"
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gan_dir = args.gan or latest_gan(REPO / "outputs" / "artifacts")
    config, _ = load_artifact_dir(gan_dir)
    classifier = load_classifier(config["classifier_artifact"])
    generator = load_counterfactual_generator(gan_dir)
    images, labels = real_test_digits(args.data, args.n)
    num_classes = config["dataset_info"]["num_classes"]

    mdts = MDTS().setup(BaselineContext(classifier=classifier, train_images=training_digits(config)))
    results = {
        "gan_artifact": str(gan_dir),
        "n_digits": len(images),
        "classifier_acc_on_digits": float((classifier(images).argmax(1) == labels).float().mean()),
        "ganmex": measure(
            generator.counterfactual, classifier, images, labels, num_classes, args.batch_size, "GANMEX"
        ),
        "mdts": measure(
            lambda x, t: mdts(x, t, t), classifier, images, labels, num_classes, args.batch_size, "MDTS"
        ),
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
