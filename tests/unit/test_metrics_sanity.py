"""Cascading randomisation and the Spearman helper it uses."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from ganmex.metrics import CascadingRandomization
from ganmex.metrics.scoring import average_ranks, spearman_rows


def test_spearman_matches_scipy_with_ties():
    torch.manual_seed(0)
    a = torch.randint(0, 4, (3, 30)).float()  # many ties, like zero attributions on black pixels
    b = torch.randn(3, 30)
    ours = spearman_rows(a, b)
    for i in range(3):
        assert ours[i].item() == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-6)
    assert average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]])).tolist() == [[3.5, 1.0, 3.5, 2.0]]


def gradient(model, x, source, target):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    score = logits.gather(1, source.view(-1, 1)) - logits.gather(1, target.view(-1, 1))
    return torch.autograd.grad(score.sum(), x)[0]


def test_layers_are_randomised_from_the_output_down_and_model_is_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 3)
    ).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 1, 8, 8)
    m = CascadingRandomization()
    m.update(model, gradient, x, 0, 1)
    out = m.compute()
    assert m.layer_names == ["5", "3", "0"]
    assert out["spearman"].shape == (4, 3) and out["spearman/0"].shape == (4,)
    assert (out["spearman"] < 0.99).all()  # gradients depend on the weights
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    # an explanation that ignores the model keeps a perfect correlation: it fails the sanity check
    m = CascadingRandomization()
    m.update(model, lambda net, inp, s, t: inp.clone(), x, 0, 1)
    torch.testing.assert_close(m.compute()["spearman"], torch.ones(4, 3))


def test_seeded_randomisation_is_reproducible():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    x = torch.rand(3, 1, 4, 4)
    values = []
    for _ in range(2):
        m = CascadingRandomization(seed=4)
        m.update(model, gradient, x, 0, 1)
        values.append(m.compute()["spearman"])
    assert torch.equal(values[0], values[1])
    with pytest.raises(ValueError, match="has no layer with parameters to randomise"):
        CascadingRandomization().update(nn.Flatten(), gradient, x, 0, 1)
