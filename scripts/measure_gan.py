"""GANMEX counterfactuals vs MDTS on real MNIST test digits, judged by f and by an independent oracle g.

For the first `--n` real test digits and every target t != c (c = true label), x' = G(x, t) (GANMEX) or
the nearest training digit that f assigns to t (MDTS, `ganmex.explain.baselines.MDTS` over the GAN's
training split), scored with `ganmex.metrics.CounterfactualQuality`:
  validity          argmax f(x') = t            oracle_validity  argmax g(x') = t
  l1_per_pixel      mean |x' - x| in [0, 1]     changed_fraction share of pixel values moved > tolerance
  fid, kid_mean     in g's penultimate feature space, counterfactuals vs the real test digits
If the GAN was trained on `dataset=mnist_colored`, the test digits are coloured by the same rule.

    python scripts/measure_gan.py [--gan outputs/artifacts/gan-<hash>]
        [--oracle outputs/artifacts/oracle-<hash>] [--n 1000] [--out gan_measure.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ganmex.artifacts import load_artifact_dir, newest_artifact
from ganmex.data.colored import colorize
from ganmex.data.mnist_test import load_mnist_test
from ganmex.explain.baselines import MDTS, BaselineContext
from ganmex.metrics import CounterfactualQuality
from ganmex.models.loading import load_classifier, load_counterfactual_generator
from ganmex.pipeline.build import build_datamodule
from ganmex.report.gan_grid import counterfactual_grid, pick_one_per_class, save_grid_png

REPO = Path(__file__).resolve().parents[1]
SUMMARY = ("validity", "oracle_validity", "l1_per_pixel", "changed_fraction")
SET_LEVEL = ("fid", "kid_mean", "kid_std")


def find_oracle(root: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    try:
        return newest_artifact(root, "oracle")
    except FileNotFoundError:
        sys.exit(
            f"no finished oracle-<hash> artifact under {root}: train the independent judge with "
            f"`python train.py stage=oracle` (or `python train.py stage=classifier classifier=mnist_oracle "
            f"seed=1`) and pass its directory with --oracle"
        )


def training_images(gan_config: dict) -> torch.Tensor:
    """The un-augmented training split the GAN (and f) saw, float [0, 1]: MDTS's search space."""
    dm = build_datamodule(OmegaConf.create(gan_config["dataset"]))
    dm.setup("fit")
    images = dm.dataset("train").images
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def is_colored(gan_config: dict) -> bool:
    return "colored" in str(gan_config["dataset"].get("_target_", "")).lower()


@torch.no_grad()
def score(
    make: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    classifier: torch.nn.Module,
    oracle: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int,
    tolerance: float,
) -> dict:
    """Mean of each per-pair output of CounterfactualQuality over all (x, t != c) pairs, plus FID/KID."""
    metric = CounterfactualQuality(oracle=oracle, change_tolerance=tolerance)
    started = time.perf_counter()
    targets = []
    for t in range(num_classes):
        keep = labels != t
        x, c = images[keep], labels[keep]
        for start in range(0, len(x), batch_size):
            xb, cb = x[start : start + batch_size], c[start : start + batch_size]
            tb = torch.full_like(cb, t)
            metric.update(classifier, xb, make(xb, cb, tb), cb, tb)
            targets.append(tb)
    out = metric.compute()
    result = {name: float(out[name].float().mean()) for name in SUMMARY}
    result.update({name: float(out[name]) for name in SET_LEVEL})
    # where the judges disagree: the oracle's verdict per target class (pairs are in update order)
    target = torch.cat(targets)
    result["oracle_validity_by_target"] = {
        t: float(out["oracle_validity"][target == t].float().mean()) for t in range(num_classes)
    }
    result["pairs"] = int(out["validity"].numel())
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artifacts", type=Path, default=REPO / "outputs" / "artifacts")
    parser.add_argument("--gan", type=Path, default=None, help="gan-<hash> artifact (default: newest)")
    parser.add_argument("--oracle", type=Path, default=None, help="oracle artifact (default: newest)")
    parser.add_argument("--n", type=int, default=1000, help="number of real test digits")
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data", help="dir with MNIST/raw"
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--tolerance", type=float, default=0.1, help="changed-pixel tolerance in [0, 1]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-mdts", action="store_true", help="score GANMEX only")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    parser.add_argument("--grid", type=Path, default=None, help="PNG grid: a test digit per class x targets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gan_dir = args.gan or newest_artifact(args.artifacts, "gan")
    oracle_dir = find_oracle(args.artifacts, args.oracle)
    config, _ = load_artifact_dir(gan_dir, kinds=("gan",))
    classifier = load_classifier(config["classifier_artifact"])
    oracle = load_classifier(oracle_dir)
    generator = load_counterfactual_generator(gan_dir)
    images, labels = load_mnist_test(args.data, args.n)
    if is_colored(config):
        images = colorize(images)
    num_classes = config["dataset_info"]["num_classes"]
    common = (classifier, oracle, images, labels, num_classes, args.batch_size, args.tolerance)

    results = {
        "gan_artifact": str(gan_dir),
        "oracle_artifact": str(oracle_dir),
        "colored": is_colored(config),
        "n_digits": len(images),
        "gan_train_time_s": json.loads((gan_dir / "metrics.json").read_text()).get("train_time_s")
        if (gan_dir / "metrics.json").is_file()
        else None,
        "classifier_acc_on_digits": float((classifier(images).argmax(1) == labels).float().mean()),
        "oracle_acc_on_digits": float((oracle(images).argmax(1) == labels).float().mean()),
        "ganmex": score(lambda x, c, t: generator.counterfactual(x, t), *common),
    }
    if not args.no_mdts:
        mdts = MDTS().setup(BaselineContext(classifier=classifier, train_images=training_images(config)))
        results["mdts"] = score(lambda x, c, t: mdts(x, c, t), *common)
    if args.grid:
        rows, _ = pick_one_per_class(images, labels, num_classes)
        save_grid_png(counterfactual_grid(generator.counterfactual, rows, num_classes), args.grid)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
