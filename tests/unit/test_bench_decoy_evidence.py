"""The decoy-evidence measurement (scripts/decoy_evidence.py): a classifier that reads the swatch follows
the repainted swatch, one that reads the digit follows the label."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.bench.decoy_evidence import decoy_data, repaint_swatches, swatch_reliance


@pytest.fixture(scope="module")
def data():
    return decoy_data(seed=0, labels="swatch")


class SwatchReader(nn.Module):
    """Predicts the class whose shade is nearest the mean of the swatch pixels (it knows where they are)."""

    def __init__(self, masks: torch.Tensor, shades: torch.Tensor) -> None:
        super().__init__()
        self.masks, self.shades = masks, shades

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = (x * self.masks).flatten(1).sum(1) / self.masks.flatten(1).sum(1)
        return -(inside[:, None] - self.shades[None]).abs()


class LabelReader(nn.Module):
    """Knows each test image's label, whatever its swatch shows (a classifier that reads the digit)."""

    def __init__(self, labels: torch.Tensor, classes: int) -> None:
        super().__init__()
        self.logits = nn.functional.one_hot(labels, classes).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_repainting_changes_only_the_swatch():
    images = torch.full((2, 1, 4, 4), 0.5)
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[:, :, :2, :2] = True
    out = repaint_swatches(images, masks, torch.tensor([0.9, 0.1]), torch.tensor([1, 0]))
    assert (out[0][masks[0]] == 0.1).all() and (out[1][masks[1]] == 0.9).all()
    assert (out[~masks] == 0.5).all()


def test_a_swatch_reader_follows_the_swatch(data):
    masks = data.ground_truth_masks("test")[:, None].float()
    result = swatch_reliance(SwatchReader(masks, data.shades), data)
    assert result["clean_accuracy"] == pytest.approx(1.0)
    assert result["follows_swatch"] == pytest.approx(1.0) and result["follows_digit"] == 0.0
    swatch_pixels = data.swatch_size**2 / masks[0].numel()
    assert result["swatch_area"] == pytest.approx(swatch_pixels)


def test_a_digit_reader_follows_the_label(data):
    labels = data.dataset("test").labels.long()
    result = swatch_reliance(LabelReader(labels, data.num_classes), data)
    assert (
        result["clean_accuracy"] == 1.0 and result["follows_digit"] == 1.0 and result["follows_swatch"] == 0.0
    )
