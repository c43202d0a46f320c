"""Infidelity and max-sensitivity through captum, checked on linear models where they are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.metrics import Infidelity, SensitivityMax


@pytest.fixture
def linear():
    torch.manual_seed(0)
    lin = nn.Linear(16, 3)
    return nn.Sequential(nn.Flatten(), lin).eval(), lin.weight.detach(), torch.rand(4, 1, 4, 4)


def test_gradient_of_a_linear_model_has_zero_infidelity(linear):
    model, w, x = linear
    src, tgt = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    grad = (w[src] - w[tgt]).view_as(x)  # f(x) - f(x - I) = grad . I exactly
    m = Infidelity(n_perturb_samples=8, normalize=False)
    m.update(model, x, grad, src, tgt)
    assert m.compute()["infidelity"].abs().max() < 1e-8
    noisy = Infidelity(n_perturb_samples=8, normalize=False)
    noisy.update(model, x, grad + torch.randn_like(grad), src, tgt)
    assert (noisy.compute()["infidelity"] > 1e-3).all()


def test_infidelity_is_seeded(linear):
    model, _, x = linear
    a = torch.randn_like(x)
    values = []
    for _ in range(2):
        m = Infidelity(n_perturb_samples=4, seed=5)
        m.update(model, x, a, 0, 1)
        values.append(m.compute()["infidelity"])
    assert torch.equal(values[0], values[1])


def test_sensitivity_max_of_input_independent_and_grad_x_input_explanations(linear):
    model, w, x = linear
    m = SensitivityMax(n_perturb_samples=5)
    m.update(lambda inp, s, t: (w[s] - w[t]).view_as(inp), x, 0, 1)
    assert m.compute()["sensitivity_max"].abs().max() == 0
    m = SensitivityMax(perturb_radius=0.02, n_perturb_samples=5)
    m.update(lambda inp, s, t: (w[s] - w[t]).view_as(inp) * inp, x, 0, 1)
    value = m.compute()["sensitivity_max"]
    # ||g*(x+d) - g*x|| / ||g*x|| <= 0.02 * ||g|| / ||g*x||
    g = (w[0] - w[1]).view(1, -1)
    bound = 0.02 * g.norm() / (g * x.flatten(1)).norm(dim=1)
    assert value.shape == (4,) and (value > 0).all() and (value <= bound + 1e-6).all()


def test_errors_name_the_problem(linear):
    model, _, x = linear
    with pytest.raises(ValueError, match=r"attributions \(4, 16\) must have the inputs' shape"):
        Infidelity().update(model, x, torch.rand(4, 16), 0, 1)
    with pytest.raises(ValueError, match="noise_std must be > 0"):
        Infidelity(noise_std=0)
