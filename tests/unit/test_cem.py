"""CEM pieces against hand-computed values, gradients of every loss term, bisection, a linear classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.explain.cem import (
    CEMResult,
    CEMScores,
    ContrastiveExplainer,
    attack_loss,
    cem_scores,
    cem_terms,
    elastic_net,
    max_other,
    meets_rule,
    project,
    shrink,
    smooth_loss,
    update_c,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny tensors are dominated by per-op overhead; extra threads on a shared CPU only add waiting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_shrink_matches_hand_computed_values():
    x0 = torch.tensor([0.5, 0.5, 0.5, 0.2, 0.9])
    z = torch.tensor([0.75, 0.55, 0.30, 0.0, 0.9])
    # |z - x0| = .25 .05 .2 .2 0 -> minus beta .1, clamped at 0, re-signed around x0
    expected = torch.tensor([0.65, 0.5, 0.4, 0.1, 0.9])
    assert torch.allclose(shrink(z, x0, 0.1), expected, atol=1e-6)


def test_project_keeps_the_allowed_side():
    x0 = torch.tensor([0.2, 0.5, 0.0, 1.0])
    v = torch.tensor([0.1, 1.3, 0.4, 0.7])
    assert torch.equal(project(v, x0, "PN"), torch.tensor([0.2, 1.0, 0.4, 1.0]))  # v in [x0, 1]
    v = torch.tensor([0.3, -0.2, 0.4, 0.7])
    assert torch.equal(project(v, x0, "PP"), torch.tensor([0.2, 0.0, 0.0, 0.7]))  # v in [0, x0]


def test_bad_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"mode='PX'.*PN, PP"):
        project(torch.zeros(1), torch.zeros(1), "PX")


def test_masked_max_of_negative_logits():
    logits = torch.tensor([[-1.0, -5.0, -3.0], [-4.0, -2.0, -9.0], [2.0, 7.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    # a 0/1 mask multiplied in (the reproduction's bug) would give 0 for the first two rows
    assert torch.equal(max_other(logits, labels), torch.tensor([-3.0, -4.0, 2.0]))


def test_attack_hinge_and_decision_rule():
    logits = torch.tensor([[5.0, 1.0, -2.0], [1.0, 14.0, 0.0], [3.0, 4.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    # PN: max(Z_t0 - max_other, -kappa) with kappa 10
    assert torch.allclose(attack_loss(logits, labels, "PN", 10.0), torch.tensor([4.0, -10.0, -1.0]))
    # PP: max(max_other - Z_t0, -kappa)
    assert torch.allclose(attack_loss(logits, labels, "PP", 2.0), torch.tensor([-2.0, 13.0, 1.0]))
    assert meets_rule(logits, labels, "PN", 10.0).tolist() == [False, True, False]
    assert meets_rule(logits, labels, "PN", 0.5).tolist() == [False, True, True]
    assert meets_rule(logits, labels, "PP", 4.0).tolist() == [True, False, False]


def test_elastic_net_per_image():
    delta = torch.tensor([[[[0.5, -0.5], [0.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.allclose(elastic_net(delta, 0.1), torch.tensor([0.1 * 2.0 + 1.5, 0.0]))


class TinyAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


def _linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias if bias is not None else torch.zeros(weight.shape[0]))
    return nn.Sequential(nn.Flatten(), layer).requires_grad_(False)


@pytest.mark.parametrize("mode", ["PN", "PP"])
def test_every_loss_term_has_its_gradient(mode):
    torch.manual_seed(0)
    model = _linear(torch.randn(3, 16))
    ae = TinyAE().requires_grad_(False)
    x0 = torch.rand(2, 1, 4, 4) * 0.5 + 0.25
    v = project(x0 + (0.2 if mode == "PN" else -0.2) * torch.rand_like(x0), x0, mode).requires_grad_(True)
    labels = torch.tensor([0, 1])
    terms = cem_terms(v, x0, labels, model, ae, mode, kappa=100.0)  # kappa large: hinge not saturated
    grads = {k: torch.autograd.grad(terms[k].sum(), v, retain_graph=True)[0] for k in ("attack", "l2", "ae")}
    delta = v.detach() - x0 if mode == "PN" else x0 - v.detach()
    # d||delta||^2 / dv = +2 delta (PN, delta = v - x0) or -2 delta (PP, delta = x0 - v)
    assert torch.allclose(grads["l2"], (2 if mode == "PN" else -2) * delta, atol=1e-6)
    # attack gradient of a linear model: w_t0 - w_runner-up in both modes (PP: two sign flips,
    # the hinge is max_other - Z_t0 and the classifier sees x0 - v)
    w = model[1].weight
    other = max_other(terms["logits"].detach(), labels)
    runner = torch.stack([(terms["logits"][i].detach() == other[i]).nonzero()[0, 0] for i in range(2)])
    expected = (w[labels] - w[runner]).view(2, 1, 4, 4)
    assert torch.allclose(grads["attack"], expected, atol=1e-5)
    assert grads["ae"].abs().sum() > 0
    c = torch.tensor([3.0, 5.0])
    total = torch.autograd.grad(smooth_loss(terms, c, 2.0).sum(), v)[0]
    combined = c.view(2, 1, 1, 1) * grads["attack"] + grads["l2"] + 2.0 * grads["ae"]
    assert torch.allclose(total, combined, atol=1e-5)


def test_saturated_hinge_has_no_attack_gradient():
    model = _linear(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    x0 = torch.ones(1, 1, 1, 2)
    v = x0.clone().requires_grad_(True)
    terms = cem_terms(v, x0 * 0, torch.tensor([0]), model, None, "PN", kappa=1.0)  # margin 20 >= kappa
    assert torch.autograd.grad(terms["attack"].sum(), v)[0].abs().sum() == 0


def test_bisection_on_c_follows_the_rule():
    c, lower, upper = torch.tensor([10.0, 10.0]), torch.zeros(2), torch.full((2,), 1e10)
    seen = []
    for success in ([False, True], [False, False], [True, True], [False, True], [True, False]):
        c, lower, upper = update_c(c, lower, upper, torch.tensor(success))
        seen.append(c.tolist())
    # image 0: fail at 10 -> x10, fail at 100 -> x10, success at 1000 -> (100 + 1000) / 2,
    #          fail at 550 -> (550 + 1000) / 2, success at 775 -> (550 + 775) / 2
    # image 1: success at 10 -> (0 + 10) / 2, fail at 5 -> (5 + 10) / 2, success at 7.5 -> (5 + 7.5) / 2,
    #          success at 6.25 -> (5 + 6.25) / 2, fail at 5.625 -> (5.625 + 6.25) / 2
    assert seen == [[100.0, 5.0], [1000.0, 7.5], [550.0, 6.25], [775.0, 5.625], [662.5, 5.9375]]


def test_pn_on_a_linear_classifier_adds_where_the_weights_favour_another_class():
    # 2x4 images; class 0 reads the left half, class 1 the right half
    w0 = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]).flatten()
    w1 = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]).flatten()
    model = _linear(torch.stack([w0, w1]))
    x0 = torch.tensor([[0.6, 0.6, 0.0, 0.0], [0.6, 0.6, 0.0, 0.0]]).view(1, 1, 2, 4)
    explainer = ContrastiveExplainer(
        model, None, mode="PN", kappa=0.5, beta=0.01, gamma=0.0, c_init=1.0, iterations=60, n_searches=4,
        learning_rate=0.1, progress=False,
    )  # fmt: skip
    result = explainer.explain(x0)
    assert result.valid.item() and result.explained_class.item() == 1 and result.original_class.item() == 0
    support = result.delta[0, 0] > 0
    favours_other = (w1 - w0).view(2, 4) > 0
    assert support.any() and not (support & ~favours_other).any()
    assert (result.delta >= 0).all() and (result.explanation <= 1).all()
    logits = model(result.explanation)
    assert logits[0, 1] - logits[0, 0] >= 0.5


def test_pp_keeps_a_part_of_x0_that_still_decides_the_class():
    w0 = torch.tensor([1.0, 1.0, 0.0, 0.0])
    w1 = torch.tensor([0.0, 0.0, 1.0, 1.0])
    model = _linear(torch.stack([w0, w1]), torch.tensor([0.0, 0.2]))
    x0 = torch.tensor([0.8, 0.8, 0.3, 0.3]).view(1, 1, 1, 4)
    explainer = ContrastiveExplainer(
        model, None, mode="PP", kappa=0.3, beta=0.01, gamma=0.0, c_init=1.0, iterations=60, n_searches=4,
        learning_rate=0.1, progress=False,
    )  # fmt: skip
    result = explainer.explain(x0)
    assert result.valid.item() and result.explained_class.item() == 0
    delta = result.delta.flatten()
    assert (delta >= 0).all() and (delta <= x0.flatten() + 1e-6).all()
    assert delta[2:].sum() == 0 and delta[:2].sum() > 0  # nothing from the other class's pixels
    assert delta.sum() < x0.flatten()[:2].sum()  # a proper part: sparser than the whole evidence


def test_batched_equals_one_at_a_time():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).requires_grad_(False)
    ae = TinyAE().requires_grad_(False)
    x0 = torch.rand(3, 1, 4, 4)
    settings = dict(kappa=0.2, beta=0.01, gamma=0.5, c_init=1.0, iterations=8, n_searches=3, progress=False)
    batched = ContrastiveExplainer(model, ae, mode="PN", **settings).explain(x0)
    single = [ContrastiveExplainer(model, ae, mode="PN", **settings).explain(x0[i : i + 1]) for i in (0, 2)]
    assert torch.allclose(batched.delta[[0, 2]], torch.cat([s.delta for s in single]), atol=1e-5)
    assert batched.successes[[0, 2]].tolist() == [s.successes.item() for s in single]
    assert batched.delta.abs().sum() > 0  # the comparison is not between two empty deltas
    chunked = ContrastiveExplainer(model, ae, mode="PN", batch_size=2, **settings).explain(x0)
    assert torch.allclose(chunked.delta, batched.delta, atol=1e-6)


def test_input_checks_say_what_to_do():
    model = _linear(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"cem.gamma=1.0 needs an autoencoder.*cem.gamma=0"):
        ContrastiveExplainer(model, None, gamma=1.0)
    with pytest.raises(ValueError, match=r"cem.iterations=0 must be > 0"):
        ContrastiveExplainer(model, None, gamma=0.0, iterations=0)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        ContrastiveExplainer(model, None, gamma=0.0).explain(torch.full((1, 1, 2, 2), 2.0))


def test_scores_from_hand_built_results():
    x0 = torch.zeros(2, 1, 2, 2)
    delta = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]], [[[0.2, 0.2], [0.2, 0.2]]]])
    result = CEMResult(
        "PN", x0, delta, x0 + delta, torch.tensor([3, 3]), torch.tensor([5, 3]), torch.tensor([True, False]),
        torch.tensor([2, 0]), torch.tensor([5.0, 1e3]),
    )  # fmt: skip
    scores = cem_scores(result)
    assert scores["cem_pn/validity"] == 0.5
    assert scores["cem_pn/l1"] == pytest.approx(0.5)  # over valid images only
    assert scores["cem_pn/sparsity"] == pytest.approx(0.75)
    assert scores["cem_pn/flip_rate"] == 0.5
    assert scores["cem_pn/mean_successful_searches"] == 1.0


def test_metric_accumulates_like_scores_on_the_whole_batch():
    torch.manual_seed(0)
    n = 6
    x0 = torch.rand(n, 1, 3, 3)
    delta = torch.rand(n, 1, 3, 3) * (torch.rand(n, 1, 3, 3) > 0.5)
    valid = torch.tensor([True, False, True, True, False, True])
    predicted = torch.tensor([1, 0, 2, 1, 0, 0])
    labels, ones = torch.zeros(n, dtype=torch.long), torch.ones(n)

    def result(s: slice) -> CEMResult:
        return CEMResult(
            "PN", x0[s], delta[s], x0[s] + delta[s], labels[s], predicted[s], valid[s], ones[s], ones[s]
        )

    metric = CEMScores("PN")
    for part in (slice(0, 4), slice(4, 6)):
        metric.update(result(part))
    expected = cem_scores(result(slice(0, n)))
    for key, value in metric.compute().items():
        assert float(value) == pytest.approx(expected[key], rel=1e-6), key
