"""Faithfulness correlation and Sensitivity-n: exact values on linear models, seeding, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.metrics import FaithfulnessCorrelation, SensitivityN, ZeroReference


@pytest.fixture
def linear():
    torch.manual_seed(0)
    lin = nn.Linear(64, 4)
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x = torch.rand(5, 1, 8, 8)
    src, tgt = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 3])
    # grad x input of logit_c - logit_t: for a linear model, removing S (to zero) drops the score by exactly
    # the sum of these over S, so the correlation is 1
    w = lin.weight.detach()
    a = ((w[src] - w[tgt]) * x.flatten(1)).view_as(x)
    return model, x, a, src, tgt


def test_exact_attributions_correlate_perfectly(linear):
    model, x, a, src, tgt = linear
    m = FaithfulnessCorrelation(nr_runs=20, subset_size=10)
    m.update(model, x, a, src, tgt, ZeroReference())
    torch.testing.assert_close(m.compute()["faithfulness_correlation"], torch.ones(5))
    m = FaithfulnessCorrelation(nr_runs=20, subset_size=10)
    m.update(model, x, -a, src, tgt, ZeroReference())
    torch.testing.assert_close(m.compute()["faithfulness_correlation"], -torch.ones(5))


def test_sensitivity_n_is_one_for_every_n_on_a_linear_model(linear):
    model, x, a, src, tgt = linear
    m = SensitivityN(subset_sizes=[0.1, 0.5, 3], nr_runs=10)
    m.update(model, x, a, src, tgt, torch.zeros_like(x))
    out = m.compute()
    assert out["n"].tolist() == [6, 32, 3]
    assert out["sensitivity_n"].shape == (5, 3)
    torch.testing.assert_close(out["sensitivity_n"], torch.ones(5, 3))
    torch.testing.assert_close(out["sensitivity_n@32"], torch.ones(5))


def test_hand_computed_correlation_with_given_subsets():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
    x = torch.ones(1, 1, 2, 2)
    a = torch.tensor([[[[1.0, 0.0, 0.0, 5.0]]]]).view(1, 1, 2, 2)
    subsets = torch.tensor([[[0], [1], [2]]])  # drops 1, 2, 3; attribution sums 1, 0, 0
    m = FaithfulnessCorrelation(nr_runs=3, subset_size=1, contrast="logit_c")
    m.update(model, x, a, 0, 1, ZeroReference(), subsets=subsets)
    expected = torch.corrcoef(torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0]]))[0, 1]
    # torchmetrics squeezes one-element results to 0-dim tensors
    torch.testing.assert_close(m.compute()["faithfulness_correlation"], expected)


def test_same_seed_same_subsets_and_reset_reseeds():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x, a = torch.rand(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    m = FaithfulnessCorrelation(nr_runs=5, subset_size=3, seed=7)
    m.update(model, x, a, 0, 1, ZeroReference())
    first = m.compute()["faithfulness_correlation"]
    m.reset()
    m.update(model, x, a, 0, 1, ZeroReference())
    assert torch.equal(m.compute()["faithfulness_correlation"], first)
    other = FaithfulnessCorrelation(nr_runs=5, subset_size=3, seed=8)
    other.update(model, x, a, 0, 1, ZeroReference())
    assert not torch.equal(other.compute()["faithfulness_correlation"], first)


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="nr_runs must be >= 2"):
        FaithfulnessCorrelation(nr_runs=1)
    m = FaithfulnessCorrelation(subset_size=100)
    with pytest.raises(ValueError, match="subset_size 100 exceeds the 16 pixels"):
        m.update(nn.Flatten(), torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4), 0, 1, ZeroReference())
    with pytest.raises(ValueError, match=r"give \[32\] pixels; each must be in 1..16"):
        SensitivityN(subset_sizes=[32], nr_runs=3).update(
            nn.Flatten(), torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4), 0, 1, ZeroReference()
        )
