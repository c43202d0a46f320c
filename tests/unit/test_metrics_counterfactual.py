"""Counterfactual quality: validity, proximity, sparsity, nearest training image, FID/KID in feature space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from ganmex.metrics import CounterfactualQuality
from ganmex.metrics.counterfactual import counterfactual_quality


class Tiny(nn.Module):
    """Classifier-shaped: features() = penultimate activations, forward = logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Tanh())
        self.head = nn.Linear(3, 2)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def test_per_example_values_by_hand():
    model = Tiny()
    x = torch.zeros(2, 1, 4, 4)
    cf = x.clone()
    cf[0, 0, 0, :2] = 0.5  # two pixels changed by 0.5
    cf[1, 0, 1, 1] = 0.05  # below the 0.1 tolerance
    train = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    m = CounterfactualQuality(train_images=train)
    target = model(cf).argmax(1)
    m.update(model, x, cf, 1 - target, torch.stack([target[0], 1 - target[1]]))
    out = m.compute()
    assert out["validity"].tolist() == [1.0, 0.0]
    torch.testing.assert_close(out["proximity_l1"], torch.tensor([1.0, 0.05]) / 16)
    torch.testing.assert_close(out["proximity_l2"], torch.tensor([0.5 * 2**0.5, 0.05]))
    torch.testing.assert_close(out["change_sparsity"], torch.tensor([2 / 16, 0.0]))
    torch.testing.assert_close(out["nn_distance"], torch.tensor([0.5 * 2**0.5, 0.05]))


def test_fid_matches_the_frechet_formula_and_is_zero_for_identical_sets():
    model = Tiny()
    torch.manual_seed(1)
    real, fake = torch.rand(40, 1, 4, 4), torch.rand(40, 1, 4, 4) * 0.5
    m = CounterfactualQuality(kid_subset_size=20, kid_subsets=5)
    m.update(model, real, fake, 0, 1)
    out = m.compute()
    fr = model.features(real).detach().double().numpy()
    ff = model.features(fake).detach().double().numpy()
    c1, c2 = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    expected = ((fr.mean(0) - ff.mean(0)) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert out["fid"].item() == pytest.approx(expected, rel=1e-3, abs=1e-5)
    assert out["kid"].item() > 0
    same = CounterfactualQuality(kid_subset_size=20, kid_subsets=5)
    same.update(model, real, real, 0, 1)
    assert abs(same.compute()["fid"].item()) < 1e-4
    assert "nn_distance" not in out


def test_kid_subset_shrinks_to_small_sets_and_errors_are_clear():
    model = Tiny()
    m = CounterfactualQuality(kid_subset_size=500)
    m.update(model, torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4), 0, 1)
    assert torch.isfinite(m.compute()["kid"])
    with pytest.raises(ValueError, match=r"counterfactuals \(6, 1, 4, 3\) must have the inputs' shape"):
        m.update(model, torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 3), 0, 1)


def test_a_judge_without_features_skips_fid_and_kid_with_one_line(caplog):
    """An imported classifier without classifier.feature_layer: validity and distances, no FID/KID."""

    class LogitsOnly(nn.Module):
        def forward(self, x):
            return torch.stack([x.flatten(1).mean(1), 1 - x.flatten(1).mean(1)], 1)

    m = CounterfactualQuality()
    x = torch.zeros(6, 1, 4, 4)
    with caplog.at_level("INFO"):
        m.update(LogitsOnly(), x, torch.ones(6, 1, 4, 4), 1, 0)
        m.update(LogitsOnly(), x, torch.ones(6, 1, 4, 4), 1, 0)
    out = m.compute()
    assert out["validity"].tolist() == [1.0] * 12  # mean 1 -> logits (1, 0) -> class 0 = target
    assert out["proximity_l1"].tolist() == [1.0] * 12
    assert torch.isnan(out["fid"]) and torch.isnan(out["kid"])
    assert sum("FID/KID skipped" in r.message for r in caplog.records) == 1


class Fixed(nn.Module):
    """Toy judge: predicts class 1 when the image's mean is above 0.5, else class 0; features = mean, max."""

    def features(self, x):
        return torch.stack([x.flatten(1).mean(1), x.flatten(1).amax(1)], 1)

    def forward(self, x):
        mean = x.flatten(1).mean(1)
        return torch.stack([0.5 - mean, mean - 0.5], 1)


def test_oracle_validity_matches_a_hand_count_and_fid_moves_to_the_oracle_space():
    model, oracle = Tiny(), Fixed()
    x = torch.zeros(4, 1, 4, 4)
    cf = torch.stack([torch.full((1, 4, 4), v) for v in (0.9, 0.2, 0.7, 0.6)])
    target = torch.tensor([1, 1, 0, 1])
    # oracle predicts class 1 for means 0.9, 0.7, 0.6 and class 0 for 0.2: hits on pairs 0 and 3
    m = CounterfactualQuality(oracle=oracle, kid_subset_size=4, kid_subsets=2)
    m.update(model, x, cf, 0, target)
    out = m.compute()
    assert out["oracle_validity"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out["validity"].tolist() == (model(cf).argmax(1) == target).float().tolist()
    # FID in the oracle's 2-d features (mean, max): reals all (0, 0), fakes (v, v)
    fr, ff = oracle.features(x).double().numpy(), oracle.features(cf).double().numpy()
    c1, c2 = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    expected = ((fr.mean(0) - ff.mean(0)) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert out["fid"].item() == pytest.approx(expected, rel=1e-3, abs=1e-4)
    without = CounterfactualQuality(kid_subset_size=4, kid_subsets=2)
    without.update(model, x, cf, 0, target)
    assert "oracle_validity" not in without.compute()
    featureless = CounterfactualQuality(oracle=nn.Flatten(), kid_subset_size=4, kid_subsets=2)
    featureless.update(model, x, cf, 0, target)  # the oracle judges validity; FID needs features: NaN
    assert torch.isnan(featureless.compute()["fid"])


def test_changed_pixel_share_and_l1_per_pixel_by_hand_with_a_custom_tolerance():
    model = Tiny()
    x = torch.zeros(1, 1, 4, 4)
    cf = x.clone()
    cf[0, 0, 0, :3] = torch.tensor([0.3, 0.2, 0.1])  # 3 of 16 pixels moved
    wide = CounterfactualQuality(change_tolerance=0.25)
    wide.update(model, x, cf, 0, 1)
    out = wide.compute()
    assert out["change_sparsity"].item() == pytest.approx(1 / 16)  # only 0.3 > 0.25
    assert out["proximity_l1"].item() == pytest.approx(0.6 / 16)
    tight = CounterfactualQuality(change_tolerance=0.15)
    tight.update(model, x, cf, 0, 1)
    assert tight.compute()["change_sparsity"].item() == pytest.approx(2 / 16)


def test_every_output_declares_its_direction():
    model, oracle = Tiny(), Fixed()
    m = CounterfactualQuality(
        train_images=torch.rand(3, 1, 4, 4), oracle=oracle, kid_subset_size=4, kid_subsets=2
    )
    m.update(model, torch.rand(4, 1, 4, 4), torch.rand(4, 1, 4, 4), 0, 1)
    out = m.compute()
    assert set(out) <= set(CounterfactualQuality.output_directions)
    assert CounterfactualQuality.output_directions["oracle_validity"] is True
    assert CounterfactualQuality.output_directions["fid"] is False
    assert CounterfactualQuality.output_directions["change_sparsity"] is False


def test_edit_in_mask_is_the_share_of_the_edit_inside_the_ground_truth():
    model = Tiny()
    x = torch.zeros(3, 1, 4, 4)
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True  # the deciding evidence: the top-left 2x2 corner
    cf = x.clone()
    cf[0, 0, :2, :2] = 0.8  # edits only the evidence: 1
    cf[1, 0, 0, 0], cf[1, 0, 3, 3] = 0.6, 0.2  # 0.6 of 0.8 inside: 0.75
    # cf[2] == x: no edit, so no share (NaN)
    values = counterfactual_quality(model, x, cf, torch.tensor([0, 1, 0]), masks=masks)
    assert values["edit_in_mask"][:2].tolist() == pytest.approx([1.0, 0.75])
    assert values["edit_in_mask"][2].isnan()
    m = CounterfactualQuality(kid_subset_size=2, kid_subsets=2)
    m.update(model, x, cf, 1, 0, masks=masks)
    assert m.compute()["edit_in_mask"][:2].tolist() == pytest.approx([1.0, 0.75])
    assert "edit_in_mask" not in counterfactual_quality(model, x, cf, torch.tensor([0, 1, 0]))
