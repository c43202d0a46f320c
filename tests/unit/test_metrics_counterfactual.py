"""Counterfactual quality: validity, proximity, sparsity, nearest training image, FID/KID in feature space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from ganmex.metrics import CounterfactualQuality


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
    torch.testing.assert_close(out["l1"], torch.tensor([1.0, 0.05]))
    torch.testing.assert_close(out["l2"], torch.tensor([0.5 * 2**0.5, 0.05]))
    torch.testing.assert_close(out["changed_fraction"], torch.tensor([2 / 16, 0.0]))
    torch.testing.assert_close(out["nearest_train_l2"], torch.tensor([0.5 * 2**0.5, 0.05]))


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
    assert out["kid_mean"].item() > 0
    same = CounterfactualQuality(kid_subset_size=20, kid_subsets=5)
    same.update(model, real, real, 0, 1)
    assert abs(same.compute()["fid"].item()) < 1e-4
    assert "nearest_train_l2" not in out


def test_kid_subset_shrinks_to_small_sets_and_errors_are_clear():
    model = Tiny()
    m = CounterfactualQuality(kid_subset_size=500)
    m.update(model, torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4), 0, 1)
    assert torch.isfinite(m.compute()["kid_mean"])
    with pytest.raises(ValueError, match=r"counterfactuals \(6, 1, 4, 3\) must have the inputs' shape"):
        m.update(model, torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 3), 0, 1)
    with pytest.raises(ValueError, match="has no .features"):
        m.update(nn.Flatten(), torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4), 0, 1)
