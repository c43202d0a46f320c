"""The oracle (independent judge) is trained by the classifier stage's code into its own artifact, with its
own architecture and seed, on the training split only."""

from __future__ import annotations

from pathlib import Path

import torch

from ganmex.artifacts import load_artifact_dir
from ganmex.pipeline.runner import run
from ganmex.training.classifier import ClassifierModule

TINY = [
    "stage=oracle",
    "logger=none",
    "callbacks=none",
    "gan=none",
    "dataset.augment=[]",  # un-augmented batches, so that trained images can be matched to a split
    "classifier.trainer.max_epochs=1",
    "classifier.min_val_acc=null",
    "oracle.trainer.max_epochs=1",
    "oracle.min_val_acc=null",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]


def _keys(images: torch.Tensor) -> set[bytes]:
    return {bytes((image * 255).round().to(torch.uint8).flatten().tolist()) for image in images}


def test_oracle_has_its_own_artifact_seed_and_never_trains_on_test(make_config, embedded_mnist, monkeypatch):
    seen: list[torch.Tensor] = []
    original = ClassifierModule.training_step

    def spy(self, batch, batch_idx):
        seen.append(batch[0].detach().cpu())
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassifierModule, "training_step", spy)
    cfg = make_config(TINY)
    summary = run(cfg)
    assert list(summary["stages"]) == ["oracle"]  # the oracle is made from nothing else
    oracle_dir = Path(summary["stages"]["oracle"]["artifact"])
    classifier_run = make_config(["stage=classifier" if o == "stage=oracle" else o for o in TINY])
    classifier_dir = Path(run(classifier_run)["stages"]["classifier"]["artifact"])
    assert oracle_dir.name.startswith("oracle-") and oracle_dir != classifier_dir
    config, _ = load_artifact_dir(oracle_dir, kinds=("oracle",))
    assert config["stage"] == "oracle" and config["seed"] == cfg.oracle.seed != cfg.seed
    assert config["oracle"]["net"]["_target_"] != config.get("classifier", {}).get("net", {}).get("_target_")

    test_images = _keys(embedded_mnist.dataset("test").images.float() / 255.0)
    train_images = _keys(embedded_mnist.dataset("train").images.float() / 255.0)
    trained_on = _keys(torch.cat(seen))
    assert trained_on and trained_on <= train_images and not trained_on & test_images
