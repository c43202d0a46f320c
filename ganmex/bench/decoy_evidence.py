"""Is the decoy swatch the deciding evidence? On the decoy test split each swatch is repainted with the
shade of class (y + 1) mod K: the share of predictions that follow the swatch (predict y + 1) rather than
the label (predict y) says whether a classifier decides by it. Where a GAN's edits go is `edit_in_mask`
of `python evaluate.py experiment=decoy_mnist mode=gan_quality`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganmex.bench.config import composed
from ganmex.data.decoy import DecoyMNISTDataModule


def decoy_data(seed: int = 0, labels: str = "swatch") -> DecoyMNISTDataModule:
    """The shipped decoy-MNIST datamodule (conf/dataset/decoy_mnist.yaml) of a run with this seed."""
    from ganmex.pipeline.build import build_datamodule

    cfg = composed(["dataset=decoy_mnist", f"dataset.labels={labels}", f"seed={seed}"])
    return build_datamodule(cfg.dataset)


def repaint_swatches(images: Tensor, masks: Tensor, shades: Tensor, classes: Tensor) -> Tensor:
    """Images whose swatch pixels (masks, (N, 1, H, W)) take the shade of `classes`."""
    return torch.where(masks, shades[classes].view(-1, 1, 1, 1).to(images.dtype), images)


@torch.no_grad()
def swatch_reliance(classifier: nn.Module, data: DecoyMNISTDataModule) -> dict[str, float]:
    """clean_accuracy, follows_swatch / follows_digit (shares of predictions on repainted swatches that
    name the swatch's class / the label) and swatch_area (share of pixels the swatch covers)."""
    test = data.dataset("test")
    masks = data.ground_truth_masks("test")[:, None]
    images, labels = test.images.float() / 255.0, test.labels.long()
    k = data.num_classes
    moved_to = (labels + 1) % k
    clean = classifier(images).argmax(1)
    moved = classifier(repaint_swatches(images, masks, data.shades, moved_to)).argmax(1)
    return {
        "clean_accuracy": float((clean == labels).float().mean()),
        "follows_swatch": float((moved == moved_to).float().mean()),
        "follows_digit": float((moved == labels).float().mean()),
        "swatch_area": float(masks.float().mean()),
    }


def run_decoy_evidence(classifier: str | Path, seed: int = 0, labels: str = "swatch") -> dict[str, float]:
    """swatch_reliance of a finished classifier artifact on the decoy split its run (seed, labels) made."""
    from ganmex.models.loading import load_classifier

    return swatch_reliance(load_classifier(classifier).eval(), decoy_data(seed, labels))
