"""The stage life cycle refuses to commit unsound training, recovers from a broken resume checkpoint and
refuses artifacts of the wrong kind (tiny budgets on the real embedded digits)."""

from __future__ import annotations

import shutil
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


EVALUATE = ["gan=none", "oracle=none", "logger=none", "attribution=[saliency]", "baselines=[zero]"]


def test_a_copied_artifact_under_any_name_is_used(make_config, trained_classifier_artifact, tmp_path):
    copy = tmp_path / "my_best_classifier"
    shutil.copytree(trained_classifier_artifact, copy)
    cfg = make_config(["mode=classifier_test", f"classifier.artifact={copy}", *EVALUATE], name="evaluate")
    summary = run(cfg)
    assert summary["stages"]["evaluate"]["metrics"]["test/acc"] > 0.9


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["evaluation.num_images=0"], r"evaluation.num_images=0 must be > 0 or null"),
        (["mode=explain", "indices=[3,99999]"], r"indices \[99999\] are not in \[0, 500\) of mnist_embedded"),
        (["mode=explain", "explain.device=tpu"], r"explain.device='tpu' is not valid"),
    ],
)
def test_evaluate_settings_outside_the_data_are_named(
    make_config, trained_classifier_artifact, overrides, message
):
    cfg = make_config(
        [f"classifier.artifact={trained_classifier_artifact}", *EVALUATE, *overrides], name="evaluate"
    )
    with pytest.raises(ConfigError, match=message):
        run(cfg)


def test_loading_a_gan_artifact_as_a_classifier_names_its_kind(tmp_path):
    from ganmex import load_classifier

    gan_dir = tmp_path / "gan-0123456789"
    gan_dir.mkdir()
    (gan_dir / "config.yaml").write_text("stage: gan\n")
    (gan_dir / "metrics.json").write_text("{}")
    (gan_dir / "checkpoint.ckpt").write_bytes(b"")  # complete-looking: only its kind is wrong
    with pytest.raises(FileNotFoundError, match=r"is a gan artifact, not a classifier or oracle artifact"):
        load_classifier(gan_dir)


def test_an_interrupted_fit_is_never_committed(make_config, tmp_path, monkeypatch):
    """Ctrl+C that Lightning turns into a graceful stop leaves `.partial`, not a finished artifact."""
    import lightning as L
    from lightning.pytorch.trainer.states import TrainerStatus

    def interrupted_fit(trainer, *args, **kwargs):
        trainer.state.status = TrainerStatus.INTERRUPTED

    monkeypatch.setattr(L.Trainer, "fit", interrupted_fit)
    with pytest.raises(UnsoundTrainingError, match=r"classifier training was interrupted; rerun the same"):
        run(make_config(TINY))
    assert finished(tmp_path) == []


def test_a_finished_partial_gives_the_same_verdict_on_every_rerun(make_config, tmp_path):
    """The issue's `lr=1e6`, twice: the rerun resumes the finished last.ckpt, fit has nothing left to do,
    and the restored weights are validated again: the same floor message, never "enable validation"."""
    cfg = make_config([*TINY, "callbacks=checkpoint", "classifier.optimizer.lr=1e6"])
    messages = []
    for _ in range(2):
        with pytest.raises(UnsoundTrainingError) as unsound:
            run(cfg)
        messages.append(str(unsound.value))
    assert messages[0] == messages[1]
    assert "below the floor classifier.min_val_acc" in messages[0] and "enable validation" not in messages[0]
    assert (classifier_artifact(cfg).partial_path / RESUME_CHECKPOINT).is_file()


def test_a_full_disk_at_commit_is_named_and_the_rerun_commits(make_config, tmp_path, monkeypatch, caplog):
    import errno
    import io

    from ganmex import artifacts
    from ganmex.errors import DiskFullError

    class FullDisk(io.FileIO):
        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    cfg = make_config([*TINY, "callbacks=checkpoint", "classifier.min_val_acc=null"])
    real_save = artifacts.save_atomic

    def full_at_commit(obj, path):
        if Path(path).name == "checkpoint.ckpt":  # Lightning's last.ckpt fits, the artifact's does not
            with pytest.MonkeyPatch.context() as full:
                full.setattr(artifacts, "open", lambda p, mode: FullDisk(p, mode), raising=False)
                return real_save(obj, path)
        return real_save(obj, path)

    monkeypatch.setattr(artifacts, "save_atomic", full_at_commit)
    partial = classifier_artifact(cfg).partial_path
    with pytest.raises(DiskFullError, match=rf"No space left on device while writing {partial}/checkpoint"):
        run(cfg)
    assert not list(partial.glob(".*tmp")) and finished(tmp_path) == []
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        summary = run(cfg)
    assert "resuming classifier training" in caplog.text
    assert (Path(summary["stages"]["classifier"]["artifact"]) / "metrics.json").is_file()


def test_a_failed_start_up_leaves_no_empty_partial_and_no_lock(make_config, tmp_path, monkeypatch):
    def no_trainer(*args, **kwargs):
        raise RuntimeError("the trainer cannot start")

    monkeypatch.setattr("ganmex.pipeline.stage.build_trainer", no_trainer)
    with pytest.raises(RuntimeError, match="cannot start"):
        run(make_config(TINY))
    assert list((tmp_path / "outputs" / "artifacts").iterdir()) == []


def _two_class_classifier(root: Path) -> Path:
    """A finished-looking classifier artifact whose record says it was trained on 2 classes of 28 px."""
    from ganmex.artifacts import Artifact
    from ganmex.data.info import DatasetInfo

    info = DatasetInfo("apples_oranges", 2, 1, 28, (0.5,), (0.25,), ("apple", "orange"))
    artifact = Artifact("classifier", "two", root)
    artifact.commit({"state_dict": {}}, {"dataset_info": info.to_dict(), "classifier": {}}, {"test/acc": 1})
    return artifact.path


@pytest.mark.parametrize(
    "overrides",
    [
        ["stage=gan"],  # the classifier stage reuses the explicit artifact first, and checks it
        ["stage=gan", "run_upstream=false"],  # the GAN stage checks the classifier it trains against
        ["stage=oracle", "oracle.artifact={artifact}"],
    ],
    ids=["gan", "gan-alone", "oracle"],
)
def test_a_model_of_other_data_is_refused_before_any_training(make_config, tmp_path, overrides):
    """A 2-class classifier on the 10-class digits: named at start-up, never an IndexError mid-training."""
    artifact = _two_class_classifier(tmp_path / "elsewhere")
    settings = [o.format(artifact=artifact) for o in overrides]
    cfg = make_config([*settings, f"classifier.artifact={artifact}", "logger=none", "callbacks=none"])
    with pytest.raises(ConfigError) as refused:
        run(cfg)
    message = str(refused.value)
    assert f".artifact={artifact} trained on apples_oranges (1x28px, 2 classes)" in message
    assert "cannot be used with dataset mnist_embedded (1x28px, 10 classes)" in message
    assert not (tmp_path / "outputs" / "artifacts").exists() or not list(
        (tmp_path / "outputs" / "artifacts").iterdir()
    )
