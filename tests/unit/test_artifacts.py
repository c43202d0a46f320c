"""Artifact lock between runs, explicit directories of any name, the recorded kind, atomic writes."""

from __future__ import annotations

import errno
import io
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ganmex import artifacts
from ganmex.artifacts import Artifact, artifact_kind, load_artifact_dir
from ganmex.errors import ArtifactLockedError, ConfigError, DamagedArtifactError, DiskFullError

HOLD_S = 1.5


def _hold_lock(root: str, ready, hold_s: float) -> None:
    with Artifact("classifier", "abc", Path(root)).lock():
        ready.set()
        time.sleep(hold_s)


@pytest.fixture
def held_lock(tmp_path):
    """Another process holding classifier-abc's lock for HOLD_S seconds."""
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, HOLD_S))
    proc.start()
    assert ready.wait(60), "the lock-holding process did not start"
    yield Artifact("classifier", "abc", tmp_path)
    proc.join(60)


def test_second_run_times_out_with_a_clear_error_while_the_first_holds_the_lock(held_lock, caplog):
    with caplog.at_level("INFO"), pytest.raises(ArtifactLockedError) as info:
        with held_lock.lock(timeout_s=0.3):
            pass
    assert f"another run holds {held_lock.lock_path}; waiting" in caplog.text
    assert str(held_lock.lock_path) in str(info.value) and "0.3 s" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_second_run_waits_until_the_first_releases_the_lock(held_lock):
    started = time.monotonic()
    with held_lock.lock(timeout_s=60) as path:
        waited = time.monotonic() - started
        assert path == held_lock.lock_path
    assert 0.2 < waited < HOLD_S + 30  # it blocked, then got the lock once the holder let go


def test_lock_is_reentrant_across_sequential_runs_and_sits_beside_the_dir(tmp_path):
    artifact = Artifact("gan", "k1", tmp_path)
    with artifact.lock(timeout_s=1):
        pass
    with artifact.lock(timeout_s=1):
        assert artifact.lock_path == tmp_path / "gan-k1.lock"


def test_commit_records_the_stage_and_writes_no_temp_files(tmp_path):
    artifact = Artifact("oracle", "k2", tmp_path)
    artifact.commit({"w": torch.ones(2)}, {"classifier": {"name": "mnist_cnn"}, "stage": "stale"}, {"a": 1.0})
    config = OmegaConf.to_container(OmegaConf.load(artifact.path / "config.yaml"))
    assert config["stage"] == "oracle" and artifact_kind(config) == "oracle"
    assert not list(artifact.path.glob(".*"))


def test_failed_config_write_leaves_no_half_yaml(tmp_path, monkeypatch):
    target = tmp_path / "config.yaml"
    artifacts.save_yaml_atomic(target, {"a": 1})

    def broken_write(self, text):
        self.open("w").write(text[:3])
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.Path, "write_text", broken_write)
    with pytest.raises(OSError, match="disk full"):
        artifacts.save_yaml_atomic(target, {"a": 2, "b": 3})
    monkeypatch.undo()
    assert OmegaConf.to_container(OmegaConf.load(target)) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_from_dir_reads_the_kind_of_a_directory_named_anything(tmp_path):
    original = Artifact("classifier", "k3", tmp_path)
    original.commit({"state_dict": {}}, {"classifier": {}}, {"test/acc": 0.9})
    renamed = tmp_path / "my_best_model"
    original.path.rename(renamed)
    artifact = Artifact.from_dir(renamed)
    assert (artifact.stage, artifact.path) == ("classifier", renamed)
    assert artifact.exists and artifact.metrics() == {"test/acc": 0.9}
    assert artifact.lock_path == tmp_path / "my_best_model.lock"
    config, _ = load_artifact_dir(renamed, kinds=("classifier",))
    assert config["stage"] == "classifier"


def test_from_dir_parses_a_standard_name_and_rejects_an_unknown_one(tmp_path):
    artifact = Artifact.from_dir(tmp_path / "gan-0123456789")
    assert (artifact.stage, artifact.key, artifact.path) == ("gan", "0123456789", tmp_path / "gan-0123456789")
    with pytest.raises(FileNotFoundError, match=r"nodash is not an artifact directory.*config\.yaml"):
        Artifact.from_dir(tmp_path / "nodash")


def test_ddp_worker_ranks_do_not_wait_for_the_lock_their_rank_0_holds(held_lock, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    started = time.monotonic()
    with held_lock.lock(timeout_s=0.1):
        assert time.monotonic() - started < 0.1


class FullDisk(io.FileIO):
    """A file on a disk that fills up after the first few bytes: write raises ENOSPC, as the kernel does."""

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_committing_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    artifact = Artifact("classifier", "k5", tmp_path)
    monkeypatch.setattr(artifacts, "open", lambda path, mode: FullDisk(path, mode), raising=False)
    with pytest.raises(DiskFullError) as full:
        artifact.commit({"w": torch.ones(1000)}, {"classifier": {}}, {"test/acc": 0.9})
    monkeypatch.undo()
    message = str(full.value)
    assert message.startswith(
        f"No space left on device while writing {artifact.partial_path}/checkpoint.ckpt"
    )
    assert "rerun the same command" in message and "\n" not in message
    assert list(artifact.partial_path.iterdir()) == []  # no .checkpoint.ckpt.tmp, nothing half-written
    assert not artifact.exists
    artifact.commit({"w": torch.ones(2)}, {"classifier": {}}, {"test/acc": 0.9})  # once there is space
    assert artifact.exists


def test_a_full_disk_while_writing_metrics_names_the_file(tmp_path, monkeypatch):
    def full_write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(artifacts.Path, "write_text", full_write)
    with pytest.raises(DiskFullError, match=r"No space left on device while writing .*metrics.json"):
        artifacts.write_json_atomic(tmp_path / "metrics.json", {"a": 1})


def test_the_lock_file_is_gone_once_released_and_the_lock_still_excludes(held_lock):
    with held_lock.lock(timeout_s=60):  # waited on the file the holder deleted as it let go
        assert held_lock.lock_path.is_file()
    assert not held_lock.lock_path.exists()


def _finished_classifier(root: Path) -> Artifact:
    artifact = Artifact("classifier", "k6", root)
    record = {
        "dataset_info": {"num_classes": 2},
        "classifier": {"name": "mnist_cnn", "net": {"_target_": "x"}},
    }
    artifact.commit({"state_dict": {"w": torch.ones(1000)}}, record, {"test/acc": 0.9})
    return artifact


@pytest.mark.parametrize(
    "damage, detail",
    [
        (
            lambda a: a.checkpoint.write_bytes(b""),
            "checkpoint.ckpt is damaged or cut short (ValueError: the file is empty)",
        ),
        (
            lambda a: a.checkpoint.write_bytes(a.checkpoint.read_bytes()[:500]),
            "checkpoint.ckpt is damaged or cut short",
        ),
        (
            lambda a: (a.path / "config.yaml").write_text(
                (a.path / "config.yaml").read_text().split("  net:")[0]
            ),
            "config.yaml is damaged or cut short (KeyError: 'no classifier.net')",
        ),
        (
            lambda a: (a.path / "config.yaml").write_text("stage: classifier\ndataset_info: {num_cl"),
            "config.yaml is damaged",
        ),
    ],
    ids=["empty-checkpoint", "truncated-checkpoint", "config-cut-before-net", "config-cut-mid-line"],
)
def test_a_damaged_artifact_file_is_named_with_the_way_back(tmp_path, damage, detail):
    artifact = _finished_classifier(tmp_path)
    damage(artifact)
    from ganmex.models.loading import load_classifier

    with pytest.raises(DamagedArtifactError) as info:
        load_classifier(artifact.path)
    message = str(info.value)
    assert message.startswith(f"{artifact.path}/{detail}")
    assert f"delete {artifact.path} and rerun `python train.py stage=classifier`" in message
    assert "\n" not in message
