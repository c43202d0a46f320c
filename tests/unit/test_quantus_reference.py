"""Our metrics against Quantus 0.6, the field's reference implementation: same model, images, attributions and
reference, deterministic settings; curves and correlations must agree to 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

# quantus 0.6 calls np.trapz, which NumPy 2.4 removed. We alias it to np.trapezoid (the same function under
# its new name) here, for these tests only, rather than pinning numpy < 2.4 for the whole project.
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid

quantus = pytest.importorskip("quantus", reason="quantus (dev extra) is not installed")

from ganmex.metrics import FaithfulnessCorrelation, Gini, InputMinimumReference, PerturbationCurve  # noqa: E402
from ganmex.metrics.localisation import Localisation  # noqa: E402
from ganmex.models.classifiers import mnist_cnn  # noqa: E402

N = 6
TOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Quantus runs one small forward pass per step; on a shared 2-core machine one thread is much faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = mnist_cnn(1, 10, 28, [0.1307], [0.3081]).eval()
    x = torch.rand(N, 1, 28, 28) ** 3  # digit-like: mostly dark; Quantus "black" = each image's minimum
    y = torch.randint(0, 10, (N,))
    t = (y + 1 + torch.randint(0, 9, (N,))) % 10
    a = torch.randn(N, 1, 28, 28)  # continuous: no ties, so both argsorts give the same order
    return net, x, y, t, a


def _quantus_call(metric, net, x, y, a):
    return np.asarray(
        metric(net, x.numpy(), y.numpy(), a_batch=a.numpy(), softmax=False, device="cpu", batch_size=N),
        dtype=np.float64,
    )


def _ours(net, x, y, t, a, contrast="logit_c", **kwargs):
    metric = PerturbationCurve(contrast=contrast, **kwargs)
    metric.update(net, x, a, y, t, InputMinimumReference())
    return metric.compute()["curve"].double().numpy()


@pytest.mark.parametrize("features_in_step", [14, 56])
def test_pixel_flipping_curve_matches_quantus(setup, features_in_step):
    net, x, y, t, a = setup
    q = quantus.PixelFlipping(
        features_in_step=features_in_step, normalise=False, abs=False, disable_warnings=True
    )
    theirs = _quantus_call(q, net, x, y, a)
    ours = _ours(net, x, y, t, a, num_steps=None, features_per_step=features_in_step)
    # Quantus records the output after each step; our curve also starts with the untouched input
    assert theirs.shape == (N, 784 // features_in_step)
    np.testing.assert_allclose(ours[:, 1:], theirs, atol=TOL, rtol=0)


def test_pixel_flipping_auc_matches_quantus(setup):
    net, x, y, t, a = setup
    q = quantus.PixelFlipping(
        features_in_step=28, normalise=False, abs=False, disable_warnings=True, return_auc_per_sample=True
    )
    theirs = _quantus_call(q, net, x, y, a)  # np.trapz over the step index: exercises the alias above
    ours = _ours(net, x, y, t, a, num_steps=None, features_per_step=28)
    np.testing.assert_allclose(np.trapezoid(ours[:, 1:], dx=1, axis=1), theirs, atol=TOL, rtol=0)


def test_one_vs_one_curve_matches_quantus_on_the_pair_difference(setup):
    net, x, y, t, a = setup

    class PairDifference(nn.Module):
        """Logits minus each example's target logit, so Quantus's output[y] is logit_c - logit_t."""

        def forward(self, inp):
            logits = net(inp)
            return logits - logits.gather(1, t.view(-1, 1))

    q = quantus.PixelFlipping(features_in_step=16, normalise=False, abs=False, disable_warnings=True)
    theirs = _quantus_call(q, PairDifference().eval(), x, y, a)
    ours = _ours(net, x, y, t, a, contrast="one_vs_one", num_steps=None, features_per_step=16)
    np.testing.assert_allclose(ours[:, 1:], theirs, atol=TOL, rtol=0)


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("patch_size", [4, 5])  # 5 does not divide 28: Quantus centres a padded grid
def test_region_perturbation_matches_quantus(setup, order, patch_size):
    net, x, y, t, a = setup
    regions = 30
    q = quantus.RegionPerturbation(
        patch_size=patch_size,
        order=order,
        regions_evaluation=regions,
        normalise=False,
        abs=False,
        disable_warnings=True,
    )
    theirs = _quantus_call(q, net, x, y, a)  # f(x) - f(x after r regions), r = 1..regions
    ours = _ours(
        net,
        x,
        y,
        t,
        a,
        order=order,
        feature="patch",
        patch_size=patch_size,
        num_steps=None,
        features_per_step=1,
    )
    assert theirs.shape == (N, regions)
    np.testing.assert_allclose(ours[:, :1] - ours[:, 1 : regions + 1], theirs, atol=TOL, rtol=0)


def test_faithfulness_correlation_matches_quantus(setup, monkeypatch):
    net, x, y, t, a = setup
    runs, size = 25, 60
    drawn = []
    choice = np.random.choice

    def recording_choice(*args, **kwargs):
        out = choice(*args, **kwargs)
        drawn.append(out)
        return out

    # share the random subsets: record the ones Quantus draws and hand exactly those to our metric
    monkeypatch.setattr(np.random, "choice", recording_choice)
    q = quantus.FaithfulnessCorrelation(
        nr_runs=runs,
        subset_size=size,
        normalise=False,
        abs=False,
        disable_warnings=True,
        return_aggregate=False,
    )
    theirs = _quantus_call(q, net, x, y, a)
    monkeypatch.setattr(np.random, "choice", choice)
    subsets = torch.from_numpy(np.stack(drawn).reshape(runs, N, size).transpose(1, 0, 2).copy())
    metric = FaithfulnessCorrelation(nr_runs=runs, subset_size=size, contrast="logit_c")
    metric.update(net, x, a, y, t, InputMinimumReference(), subsets=subsets)
    ours = metric.compute()["faithfulness_correlation"].double().numpy()
    assert np.isfinite(theirs).all() and np.abs(theirs).max() > 0.05
    np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)


def test_gini_matches_quantus_sparseness(setup):
    net, x, y, _, a = setup
    q = quantus.Sparseness(normalise=False, abs=True, disable_warnings=True, return_aggregate=False)
    theirs = np.asarray(q(net, x.numpy(), y.numpy(), a_batch=a.abs().numpy(), device="cpu"), dtype=np.float64)
    metric = Gini()
    metric.update(a)
    np.testing.assert_allclose(metric.compute()["gini"].double().numpy(), theirs, atol=TOL, rtol=0)


def _swatch_masks(n: int, size: int = 4) -> torch.Tensor:
    """(N, 1, 28, 28) decoy-like masks: a size x size square in a different corner per image."""
    masks = torch.zeros(n, 1, 28, 28, dtype=torch.bool)
    for i in range(n):
        r, c = [(0, 0), (0, 28 - size), (28 - size, 0), (28 - size, 28 - size)][i % 4]
        masks[i, 0, r : r + size, c : c + size] = True
    return masks


QUANTUS_LOCALISATION = {
    "relevance_mass_accuracy": "RelevanceMassAccuracy",
    "relevance_rank_accuracy": "RelevanceRankAccuracy",
    "pointing_game": "PointingGame",
    "localisation_auc": "AUC",
}


@pytest.mark.parametrize("relevance", ["positive", "absolute"])
@pytest.mark.parametrize("name", list(QUANTUS_LOCALISATION))
def test_localisation_matches_quantus(setup, name, relevance):
    net, x, y, _, a = setup
    masks = _swatch_masks(N)
    # raise the relevance on the mask of some images so hits and misses both occur
    a = a + 2.5 * masks.float() * (torch.arange(N) % 2).view(-1, 1, 1, 1)
    # Quantus's `abs` is our "absolute"; our "positive" (Arras et al.) is Quantus on max(a, 0)
    given = a.clamp_min(0) if relevance == "positive" else a
    q = getattr(quantus, QUANTUS_LOCALISATION[name])(
        normalise=False, abs=relevance == "absolute", disable_warnings=True, return_aggregate=False
    )
    theirs = np.asarray(
        q(net, x.numpy(), y.numpy(), a_batch=given.numpy(), s_batch=masks.numpy(), device="cpu"),
        dtype=np.float64,
    )
    metric = Localisation(relevance=relevance)
    metric.update(a, masks)
    ours = metric.compute()[name].double().numpy()
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)
