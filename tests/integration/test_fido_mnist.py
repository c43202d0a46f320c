"""FIDO / BBMP on real MNIST test digits with a trained classifier: the masks they find are faithful, i.e.
removing the top-ranked pixels hurts the source class far more than removing as many random pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from ganmex.explain.fido import FidoSaliency
from ganmex.explain.infill import LocalMeanInFill
from ganmex.explain.methods import build_methods
from ganmex.explain.target import pair_scalar

pytestmark = pytest.mark.integration
CONF = Path(__file__).resolve().parents[2] / "conf"
N_DIGITS = 8


@pytest.fixture(scope="module")
def digits(mnist_test_digits, trained_classifier):
    """The first N correctly classified real test digits, their labels, and a wrong target class each."""
    images, labels = mnist_test_digits
    images = images[:64].view(-1, 1, 28, 28)
    labels = labels[:64].long()
    with torch.no_grad():
        correct = trained_classifier(images).argmax(1) == labels
    x, y = images[correct][:N_DIGITS], labels[correct][:N_DIGITS]
    return x, y, (y + 1) % 10


@pytest.fixture(scope="module")
def methods():
    names = ["fido_ssr", "fido_sdr", "bbmp_sdr"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"attribution=[{','.join(names)}]"])
    built = build_methods(cfg.attribution)
    for method in built.values():
        method.epochs = 40  # tiny budget; the YAML default (100) is what docs/benchmarks.md times
    return built


def _source_log_odds(model, x, y) -> torch.Tensor:
    with torch.no_grad():
        return pair_scalar(model(x), y, None, "log_odds")


def _remove(x: torch.Tensor, ranking: torch.Tensor, fraction: float, keep_top: bool) -> torch.Tensor:
    """Zero out all but (keep_top) or only (not keep_top) the top `fraction` of pixels of `ranking`."""
    k = int(fraction * x[0].numel())
    top = torch.zeros(x.shape[0], x[0].numel())
    top.scatter_(1, ranking.flatten(1).argsort(1, descending=True)[:, :k], 1.0)
    keep = top if keep_top else 1 - top
    return x * keep.view_as(x)


@pytest.mark.parametrize("name", ["fido_sdr", "bbmp_sdr"])
def test_sdr_masks_destroy_the_class_better_than_random_pixels(name, methods, digits, trained_classifier):
    x, y, t = digits
    saliency = methods[name].attribute(trained_classifier, x, torch.zeros_like(x), y, t)
    assert saliency.shape == x.shape and saliency.min() >= 0 and saliency.max() <= 1
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    drop_sdr = _source_log_odds(trained_classifier, _remove(x, saliency, 0.1, keep_top=False), y)
    drop_rand = _source_log_odds(trained_classifier, _remove(x, random, 0.1, keep_top=False), y)
    # deleting 10% of the pixels: random deletion barely touches a digit (mostly background), the SDR's
    # pixels should take the class below even odds for most digits and be much worse than random on average
    assert (drop_sdr < 0).float().mean() >= 0.75, drop_sdr
    assert drop_sdr.mean() < drop_rand.mean() - 5.0, (drop_sdr.mean(), drop_rand.mean())


def test_ssr_mask_keeps_enough_of_the_digit_to_stay_in_class(methods, digits, trained_classifier):
    x, y, t = digits
    saliency = methods["fido_ssr"].attribute(trained_classifier, x, torch.zeros_like(x), y, t)
    kept_ssr = _source_log_odds(trained_classifier, _remove(x, saliency, 0.2, keep_top=True), y)
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    kept_rand = _source_log_odds(trained_classifier, _remove(x, random, 0.2, keep_top=True), y)
    # keeping only the SSR's top 20% of pixels (background black) keeps most digits in their class
    assert (kept_ssr > 0).float().mean() >= 0.75, kept_ssr
    assert kept_ssr.mean() > kept_rand.mean() + 2.0, (kept_ssr.mean(), kept_rand.mean())


def test_local_mean_in_fill_gives_a_faithful_sdr_mask(digits, trained_classifier):
    x, y, t = digits
    method = FidoSaliency("sdr", "fido", LocalMeanInFill(7), epochs=40, seed=0)
    assert method.baseline_kind == "none"
    saliency = method.attribute(trained_classifier, x, None, y, t)
    fill = LocalMeanInFill(7)
    ranking = saliency.flatten(1).argsort(1, descending=True)[:, :78]  # top 10% of 784 pixels
    keep = torch.ones(x.shape[0], 784).scatter_(1, ranking, 0.0).view_as(x)
    random_keep = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) > 0.1).float()
    drop_sdr = _source_log_odds(trained_classifier, fill(x, keep), y)
    drop_rand = _source_log_odds(trained_classifier, fill(x, random_keep), y)
    assert drop_sdr.mean() < drop_rand.mean() - 3.0, (drop_sdr.mean(), drop_rand.mean())
