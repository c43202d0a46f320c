"""With `example_ids` the Monte-Carlo metrics draw per example from (seed, id): an example's value does not
depend on which batch it is scored in, its companions or its position (what makes DDP shards agree)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.metrics import FaithfulnessCorrelation, Infidelity, SensitivityMax, SensitivityN, ZeroReference
from ganmex.metrics.faithfulness import draw_per_example, example_generators

IDS = torch.tensor([10, 11, 12, 13])


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    x = torch.rand(6, 1, 4, 4)
    attributions = torch.randn(6, 1, 4, 4)  # not exact, so the values depend on the draws
    source, target = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 2, 0, 2, 0, 1])
    return model, x, attributions, source, target


def _scorers(model, x, attributions, source, target):
    """name -> score(rows, ids, **kwargs) -> the metric's (len(rows),) values for those rows."""

    def explain(inp, s, t):  # gradient x input of the pair score: depends on the perturbation
        inp = inp.detach().requires_grad_(True)
        out = model(inp)
        score = out.gather(1, s.view(-1, 1)) - out.gather(1, t.view(-1, 1))
        (grad,) = torch.autograd.grad(score.sum(), inp)
        return grad * inp

    def faithfulness(rows, ids, **kw):
        m = FaithfulnessCorrelation(nr_runs=6, subset_size=5, seed=3, **kw)
        m.update(
            model, x[rows], attributions[rows], source[rows], target[rows], ZeroReference(), example_ids=ids
        )
        return m.compute()["faithfulness_correlation"].reshape(len(rows), -1)  # compute() squeezes N=1

    def sensitivity_n(rows, ids, **kw):
        m = SensitivityN(subset_sizes=[2, 0.5], nr_runs=5, seed=3, **kw)
        m.update(
            model, x[rows], attributions[rows], source[rows], target[rows], ZeroReference(), example_ids=ids
        )
        return m.compute()["sensitivity_n"].reshape(len(rows), -1)  # compute() squeezes N=1

    def infidelity(rows, ids, **kw):
        m = Infidelity(n_perturb_samples=4, seed=3, **kw)
        m.update(model, x[rows], attributions[rows], source[rows], target[rows], example_ids=ids)
        return m.compute()["infidelity"].reshape(len(rows), -1)  # compute() squeezes N=1

    def sensitivity_max(rows, ids, **kw):
        m = SensitivityMax(n_perturb_samples=4, perturb_radius=0.1, seed=3, **kw)
        m.update(explain, x[rows], source[rows], target[rows], example_ids=ids)
        return m.compute()["sensitivity_max"].reshape(len(rows), -1)  # compute() squeezes N=1

    return {
        "faithfulness": faithfulness,
        "sensitivity_n": sensitivity_n,
        "infidelity": infidelity,
        "sensitivity_max": sensitivity_max,
    }


@pytest.mark.parametrize("name", ["faithfulness", "sensitivity_n", "infidelity", "sensitivity_max"])
def test_an_examples_value_does_not_depend_on_its_batch(setup, name):
    score = _scorers(*setup)[name]
    together = score([0, 1, 2, 3], IDS)
    # the same examples in other batches: other companions (rows 4, 5), other order, alone
    reordered = score([5, 2, 4, 0], torch.tensor([99, 12, 98, 10]))
    alone = score([1], IDS[1:2])
    torch.testing.assert_close(reordered[1], together[2], rtol=0, atol=1e-6)
    torch.testing.assert_close(reordered[3], together[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(alone[0], together[1], rtol=0, atol=1e-6)
    # the draws really are per id: the same image under another id gets other draws, another value
    other_id = score([0], torch.tensor([77]))
    assert not torch.allclose(other_id[0], together[0])


def test_captum_chunking_does_not_change_the_per_example_stream(setup):
    """max_examples_per_batch splits the n_perturb_samples into several perturb calls; same values."""
    scorers = _scorers(*setup)
    for name in ("infidelity", "sensitivity_max"):
        whole = scorers[name]([0, 1, 2, 3], IDS)
        chunked = scorers[name]([0, 1, 2, 3], IDS, max_examples_per_batch=4)  # one sample per call
        torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


def test_per_example_draws_follow_captums_repeat_interleave_layout():
    gens = example_generators(2, torch.tensor([5, 6]), 2)
    draws = draw_per_example(gens, 6, (3,), torch.rand)  # rows: ex5, ex5, ex5, ex6, ex6, ex6
    expected = [torch.Generator().manual_seed(2 * 1_000_003 + i) for i in (5, 6)]
    for row in range(6):
        assert torch.equal(draws[row], torch.rand(3, generator=expected[row // 3]))


def test_bad_example_ids_name_the_problem(setup):
    model, x, attributions, source, target = setup
    m = FaithfulnessCorrelation(nr_runs=4, subset_size=3)
    with pytest.raises(ValueError, match=r"example_ids must be a 1-D integer tensor .* \(6\), got \(5,\)"):
        m.update(model, x, attributions, source, target, ZeroReference(), example_ids=torch.arange(5))
    with pytest.raises(ValueError, match="example_ids must be a 1-D integer tensor"):
        Infidelity().update(model, x, attributions, source, target, example_ids=torch.rand(6))
    with pytest.raises(ValueError, match="12 rows cannot be split evenly over 5 examples"):
        draw_per_example(example_generators(0, torch.arange(5), 5), 12, (2,), torch.rand)
