"""The stage life cycle refuses to commit unsound training, recovers from a broken resume checkpoint and
refuses artifacts of the wrong kind (tiny budgets on the real embedded digits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganmex.artifacts import PARTIAL_SUFFIX, RESUME_CHECKPOINT
from ganmex.errors import ConfigError, UnsoundTrainingError
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.runner import run

TINY = [
    "stage=classifier",
    "logger=none",
    "callbacks=none",
    "classifier.trainer.max_epochs=1",
    "+trainer.limit_train_batches=5",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=1",
]


def finished(root: Path) -> list[Path]:
    return [
        p for p in (root / "outputs" / "artifacts").glob("classifier-*") if p.is_dir() and "." not in p.name
    ]


def test_diverged_classifier_is_never_committed(make_config, tmp_path):
    cfg = make_config([*TINY, "classifier.optimizer.lr=1e30"])
    with pytest.raises(UnsoundTrainingError, match=r"classifier.*not finite"):
        run(cfg)
    assert finished(tmp_path) == []
    assert list((tmp_path / "outputs" / "artifacts").glob(f"classifier-*{PARTIAL_SUFFIX}"))


def test_classifier_below_its_accuracy_floor_is_not_committed(make_config, tmp_path):
    cfg = make_config([*TINY, "classifier.min_val_acc=0.999"])
    with pytest.raises(
        UnsoundTrainingError, match=r"val/acc=.* below the floor classifier.min_val_acc=0.999"
    ):
        run(cfg)
    assert finished(tmp_path) == []


def test_unreadable_resume_checkpoint_restarts_the_stage(make_config, tmp_path, caplog):
    cfg = make_config([*TINY, "classifier.min_val_acc=null"])
    partial = classifier_artifact(cfg).partial_path
    partial.mkdir(parents=True)
    (partial / RESUME_CHECKPOINT).write_bytes(b"PK\x03\x04 truncated by a full disk")
    with caplog.at_level("WARNING"):
        summary = run(cfg)
    assert Path(summary["stages"]["classifier"]["artifact"]).is_dir()
    assert "unreadable" in caplog.text and "afresh" in caplog.text


def test_an_artifact_of_another_kind_is_refused(make_config, trained_classifier_artifact):
    cfg = make_config(
        [
            "stage=gan",
            f"classifier.artifact={trained_classifier_artifact}",
            f"gan.artifact={trained_classifier_artifact}",
            "logger=none",
        ]
    )
    with pytest.raises(ConfigError, match=r"gan.artifact=.* is a classifier artifact, not a gan artifact"):
        run(cfg)
