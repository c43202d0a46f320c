"""The GAN stage on real digits with a tiny budget: validity rises, artifacts round-trip and are reused."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from ganmex.artifacts import load_artifact_dir
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.loading import load_counterfactual_generator
from ganmex.pipeline.gan_stage import GRID_PNG
from ganmex.pipeline.runner import run
from ganmex.training.ganmex import ganmex_module_from_config
from ganmex.training.precision import FP32, resolve_precision

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
    # the configured epoch checkpoint and the GAN's step checkpoint both write last.ckpt: only one may
    resume = ["callbacks=checkpoint", "gan.checkpoint_every_n_steps=40"]
    overrides = [o for o in TINY if o != "callbacks=none"]
    cfg = make_config([*overrides, *resume, f"classifier.artifact={trained_classifier_artifact}"])
    images, labels = (
        embedded_mnist.splits["test"].images[:60].float() / 255.0,
        embedded_mnist.splits["test"].labels[:60],
    )

    L.seed_everything(cfg.seed)  # the stage seeds the same way, so this is its starting generator
    untrained = ganmex_module_from_config(cfg.gan, embedded_mnist.info, trained_classifier)
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
    assert sorted(p.name for p in artifact.glob("*.ckpt")) == ["checkpoint.ckpt"]  # no stray last-v1.ckpt

    generator = load_counterfactual_generator(artifact)
    after = validity(generator.counterfactual, trained_classifier, images, labels)
    assert after > before + 0.1, f"validity {before:.3f} -> {after:.3f} after a short run"

    # the loader round-trips the saved weights and keeps the [0, 1] / batched contract
    config, state = load_artifact_dir(artifact)
    assert config["precision"] == resolve_precision(cfg.gan.trainer.get("precision", FP32), "cpu")
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


def test_two_class_image_folder_of_300_images_trains_a_gan_end_to_end(make_config, embedded_mnist, tmp_path):
    """300 real digits (150 zeros, 150 ones) as PNGs in root/<class>/: the classifier, then the GAN, train
    from the folder. The training split (240 images) gives 24 balanced batches of 10 per epoch, fewer than
    the 30 between validations: Lightning refuses that unless validation counts batches across epochs."""
    from torchvision.io import write_png

    train = embedded_mnist.splits["train"]
    root = tmp_path / "folder"
    for label, name in ((0, "zero"), (1, "one")):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(train.images[train.labels == label][:150]):
            write_png(image.reshape(1, 28, 28).to(torch.uint8), str(root / name / f"{i}.png"))
    assert len(list(root.rglob("*.png"))) == 300
    replaced = ("gan.batch_size", "dataset.eval_batch_size", "+gan.trainer.limit_train_batches")
    overrides = [o for o in TINY if not o.startswith(replaced)]
    cfg = make_config(
        [
            *overrides,
            "dataset=image_folder",
            f"dataset.root={root}",
            "dataset.channels=1",
            "dataset.image_size=28",
            "dataset.mean=[0.5]",
            "dataset.std=[0.25]",
            "dataset.augment=[]",
            "classifier.trainer.max_epochs=3",
            "classifier.min_val_acc=null",
            "gan.batch_size=10",
            "dataset.eval_batch_size=30",
        ]
    )
    summary = run(cfg)
    assert summary["stages"]["classifier"]["metrics"]["test/acc"] > 0.9  # zeros vs ones: easy
    assert cfg.gan.trainer.val_check_interval > 240 // cfg.gan.batch_size
    result = summary["stages"]["gan"]
    artifact = Path(result["artifact"])
    assert artifact.name.startswith("gan-") and (artifact / GRID_PNG).is_file()
    assert 0.0 <= result["metrics"]["val/validity"] <= 1.0
    generator = load_counterfactual_generator(artifact)
    x = train.images[train.labels == 0][:4].float().reshape(4, 1, 28, 28) / 255.0
    out = generator.counterfactual(x, 1)
    assert out.shape == (4, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
