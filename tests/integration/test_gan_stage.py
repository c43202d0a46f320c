"""The GAN stage on real digits with a tiny budget: validity rises, artifacts round-trip and are reused."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from ganmex.artifacts import load_artifact_dir
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.loading import load_counterfactual_generator
from ganmex.pipeline.gan_stage import GRID_PNG, build_ganmex_module
from ganmex.pipeline.runner import run

pytestmark = pytest.mark.integration

TINY = [
    "stage=gan",
    "gan.min_validity=null",
    "gan=stargan",
    "logger=none",
    "callbacks=none",
    "gan.generator.conv_dim=8",
    "gan.generator.n_res=1",
    "gan.critic.conv_dim=8",
    # 60 balanced batches (critic + generator step each); epochs of 10 batches, validation every 30
    # batches: step-based validation must not depend on the epoch length (small datasets)
    "gan.trainer.max_steps=120",
    "+gan.trainer.limit_train_batches=10",
    "gan.trainer.val_check_interval=30",
    # EMA weights average over ~1,000 steps: meaningless in 60, so the check uses the live generator
    "gan.ema_decay=null",
    "gan.batch_size=20",
    "dataset.eval_batch_size=50",
]


def validity(generate, classifier, images, labels) -> float:
    """Fraction of (x, t != c) pairs with argmax f(G(x, t)) = t."""
    hits = pairs = 0
    with torch.no_grad():
        for t in range(10):
            x = images[labels != t]
            out = generate(x, torch.full((len(x),), t))
            hits += int((classifier(out).argmax(1) == t).sum())
            pairs += len(x)
    return hits / pairs


def test_short_gan_run_raises_validity_and_round_trips(
    make_config, trained_classifier_artifact, trained_classifier, embedded_mnist
):
    cfg = make_config([*TINY, f"classifier.artifact={trained_classifier_artifact}"])
    images, labels = (
        embedded_mnist.splits["test"].images[:60].float() / 255.0,
        embedded_mnist.splits["test"].labels[:60],
    )

    L.seed_everything(cfg.seed)  # the stage seeds the same way, so this is its starting generator
    untrained = build_ganmex_module(cfg, embedded_mnist.info, trained_classifier)
    before = validity(
        CounterfactualGenerator(untrained.generator).counterfactual, trained_classifier, images, labels
    )

    summary = run(cfg)
    result = summary["stages"]["gan"]
    assert not result["reused"]
    artifact = Path(result["artifact"])
    assert artifact.name.startswith("gan-") and (artifact / GRID_PNG).is_file()
    assert (Path(cfg.paths.output_dir) / GRID_PNG).is_file()
    assert 0.0 <= result["metrics"]["val/validity"] <= 1.0

    generator = load_counterfactual_generator(artifact)
    after = validity(generator.counterfactual, trained_classifier, images, labels)
    assert after > before + 0.1, f"validity {before:.3f} -> {after:.3f} after a short run"

    # the loader round-trips the saved weights and keeps the [0, 1] / batched contract
    _, state = load_artifact_dir(artifact)
    for key, value in generator.generator.state_dict().items():
        assert torch.equal(value, state["generator"][key])
    out = generator.counterfactual(images[:4], 3)
    assert out.shape == images[:4].shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, generator.counterfactual(images[:4], torch.full((4,), 3)))
    with pytest.raises(ValueError, match=r"target holds \[10\], outside the class indices \[0, 9\]"):
        generator.counterfactual(images[:2], torch.tensor([1, 10]))

    # same config again: the finished artifact is reused, keyed on the classifier it was trained against
    again = run(cfg)["stages"]["gan"]
    assert again["reused"] and again["artifact"] == result["artifact"]
