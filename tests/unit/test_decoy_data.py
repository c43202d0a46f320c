"""Decoy MNIST: swatch placement and shade by hand, masks aligned with the splits, seeded."""

from __future__ import annotations

import pytest
import torch

from ganmex.data.decoy import DecoyMNISTDataModule, MaskedImageTensorDataset, add_swatches, swatch_shades
from ganmex.data.embedded import EMBEDDED_SPLITS, MNIST_LAYOUT
from ganmex.errors import ConfigError


def test_swatch_is_in_one_corner_with_the_label_shade():
    images = torch.zeros(40, 1, 8, 8, dtype=torch.uint8)
    labels = torch.arange(40) % 4
    shades = swatch_shades(4, 0.25, 1.0)
    assert shades.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.25])
    out, masks = add_swatches(images, labels, shades, 2, seed=3)
    corners = {(0, 0), (0, 6), (6, 0), (6, 6)}
    seen = set()
    for i in range(40):
        rows, cols = masks[i].nonzero(as_tuple=True)
        assert masks[i].sum() == 4
        seen.add((int(rows.min()), int(cols.min())))
        assert (int(rows.min()), int(cols.min())) in corners
        assert out[i, 0][masks[i]].unique().tolist() == [round(255 * float(shades[labels[i]]))]
        assert out[i, 0][~masks[i]].eq(0).all()
    assert seen == corners  # every corner is drawn
    again, _ = add_swatches(images, labels, shades, 2, seed=3)
    other, _ = add_swatches(images, labels, shades, 2, seed=4)
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_bad_settings_say_what_to_fix():
    with pytest.raises(ValueError, match="swatch_size=5"):
        add_swatches(
            torch.zeros(1, 1, 8, 8, dtype=torch.uint8),
            torch.zeros(1, dtype=torch.long),
            swatch_shades(2, 0.1, 1.0),
            5,
            0,
        )
    with pytest.raises(ValueError, match="shade_low < shade_high"):
        swatch_shades(10, 0.9, 0.5)


def test_masks_follow_subsets():
    images = torch.arange(5 * 4).view(5, 1, 2, 2).to(torch.uint8)
    masks = torch.zeros(5, 2, 2, dtype=torch.bool)
    masks[:, 0, 0] = torch.tensor([True, False, True, False, True])
    data = MaskedImageTensorDataset(images, torch.arange(5), masks)
    sub = data.subset(torch.tensor([4, 1]))
    assert torch.equal(sub.masks, masks[[4, 1]]) and sub.labels.tolist() == [4, 1]
    image, label = sub[0]
    assert image.shape == (1, 2, 2) and int(label) == 4


def test_datamodule_test_masks_mark_the_swatch_of_real_digits():
    dm = DecoyMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, seed=0)
    test = dm.dataset("test")
    masks = dm.ground_truth_masks("test")
    assert masks.shape == (len(test), 28, 28) and len(test) == 500
    assert masks.flatten(1).sum(1).eq(16).all()
    shades = (dm.shades * 255).round()
    for i in range(0, 500, 50):
        image, label = test[i]
        assert torch.allclose(image[0][masks[i]] * 255, shades[label].expand(16))
    # the same seed gives the same test images and masks
    dm2 = DecoyMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, seed=0)
    assert torch.equal(dm2.ground_truth_masks("test"), masks)
    assert dm.info.name == "decoy_mnist"


def test_swatch_labels_are_balanced_shuffled_and_painted_in_the_swatch():
    dm = DecoyMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, seed=0, labels="swatch")
    digit_dm = DecoyMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, seed=0)
    everything = dm.load_all()
    assert torch.bincount(everything.labels, minlength=10).eq(500).all()  # still 500 per class
    digits = digit_dm.load_all().labels
    assert (everything.labels == digits).float().mean() < 0.2  # about 1 in 10 by chance, not the digit
    shades = (dm.shades * 255).round()
    for i in range(0, 5000, 500):
        image, label = everything[i]
        assert torch.allclose(image[0][everything.masks[i]] * 255, shades[label].expand(16))
    with pytest.raises(ConfigError, match="dataset.labels='colour' is not valid; choose one of: digit"):
        DecoyMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, seed=0, labels="colour")
