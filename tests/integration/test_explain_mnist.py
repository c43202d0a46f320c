"""Explanations of a trained MNIST classifier on real test digits: completeness and the explain mode."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import open_dict

from ganmex.explain.api import explain
from ganmex.explain.baselines import BaselineContext, baseline_by_name
from ganmex.explain.methods import method_by_name
from ganmex.explain.pairs import select_pairs
from ganmex.explain.target import scalar_of

SHARED_DATA = Path(
    os.environ.get("GANMEX_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)


def test_ig_and_deeplift_complete_on_real_digits(trained_classifier, mnist_test_digits, embedded_mnist):
    images, _ = mnist_test_digits
    x = images[:4]
    pairs = select_pairs(trained_classifier(x), "runner_up")
    train = embedded_mnist.dataset("train").images.float() / 255.0
    mdts = baseline_by_name("mdts", BaselineContext(classifier=trained_classifier, train_images=train))
    found = mdts(x, pairs.source, pairs.target)
    assert (trained_classifier(found).argmax(1) == pairs.target).all()
    for name, baseline in (("zero", baseline_by_name("zero")), ("mdts", mdts)):
        expected = scalar_of(trained_classifier, x, pairs.source, pairs.target) - scalar_of(
            trained_classifier, baseline(x, pairs.source, pairs.target), pairs.source, pairs.target
        )
        ig = method_by_name("integrated_gradients", steps=500, internal_batch_size=1000)
        total = explain(x, pairs.source, pairs.target, ig, baseline, model=trained_classifier).attributions
        # 1% of f(x) - f(x'); near-ties (|difference| < 1 logit) get 1% of one logit
        error = (total.sum((1, 2, 3)) - expected).abs()
        assert (error <= 0.01 * expected.abs().clamp(min=1.0)).all(), (name, error, expected)
        deeplift = explain(x, pairs.source, pairs.target, "deeplift", baseline, model=trained_classifier)
        assert torch.allclose(deeplift.attributions.sum((1, 2, 3)), expected, rtol=1e-4, atol=1e-4), name


def test_explain_mode_writes_the_grid(make_config, trained_classifier_artifact, mnist_test_digits, tmp_path):
    from ganmex.pipeline.explain_mode import run_explain_mode

    cfg = make_config(
        [
            "attribution=[deeplift,saliency]",
            "baselines=[zero,mean]",  # mean: the training images reach the baseline context
            "eval_dataset=mnist",
            "eval_dataset.download=false",
            f"classifier.artifact={trained_classifier_artifact}",
        ],
        name="evaluate",
    )
    with open_dict(cfg):
        cfg.eval_dataset.root = str(SHARED_DATA)  # where mnist_test_digits found the real test set
        cfg.indices = [0, 7]
        cfg.pairs = {"strategy": "runner_up", "source": "label", "fixed_target": None}
        cfg.explain = {"grid": "grid.png", "device": "cpu"}
    result = run_explain_mode(cfg)
    grid = tmp_path / "run" / "grid.png"
    assert result.metrics["explain/grid"] == str(grid) and grid.stat().st_size > 5_000
    assert (
        result.metrics["explain/pairs"] == 2 and result.metrics["explain/panels"] == 3
    )  # deeplift x 2 + saliency
    saved = torch.load(tmp_path / "run" / "grid.pt")
    _, labels = mnist_test_digits
    assert saved["indices"] == [0, 7] and saved["source"].tolist() == labels[[0, 7]].tolist()
    assert saved["attributions"][("deeplift", "mean")].shape == (2, 1, 28, 28)
