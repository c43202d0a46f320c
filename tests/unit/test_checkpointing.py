"""Atomic checkpoint writes and detection of damaged resume checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from ganmex.training import checkpointing
from ganmex.training.checkpointing import (
    AtomicCheckpointIO,
    checkpoint_problem,
    readable_checkpoint,
    save_atomic,
    usable_resume_checkpoint,
)


def test_failed_write_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)

    def dies_mid_write(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpointing.torch, "save", dies_mid_write)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert torch.load(path, weights_only=False) == {"step": 1}


def test_save_atomic_creates_the_directory_and_round_trips(tmp_path):
    path = tmp_path / "a" / "b.ckpt"
    save_atomic({"w": torch.arange(3)}, path)
    assert torch.equal(torch.load(path)["w"], torch.arange(3))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "Error"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.unlink(), "missing"),
    ],
)
def test_damaged_checkpoint_is_detected_and_deleted(tmp_path, damage, reason, caplog):
    path = tmp_path / "last.ckpt"
    save_atomic({"state_dict": {"w": torch.randn(256, 256)}}, path)
    assert readable_checkpoint(path)
    damage(path)
    assert not readable_checkpoint(path)
    assert reason in checkpoint_problem(path)
    with caplog.at_level("WARNING"):
        assert usable_resume_checkpoint(path) is None
    assert not path.exists()
    if reason != "missing":
        assert (
            f"checkpoint {path} is unreadable" in caplog.text and "starting the stage afresh" in caplog.text
        )


def test_usable_resume_checkpoint_keeps_a_good_one(tmp_path):
    path = tmp_path / "last.ckpt"
    save_atomic({"epoch": 0}, path)
    assert usable_resume_checkpoint(path) == path and path.exists()
    assert usable_resume_checkpoint(None) is None


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_writes_resumable_checkpoints_through_the_plugin(tmp_path):
    """The plugin is accepted by Trainer(plugins=...) and Lightning resumes from what it wrote."""
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=4)
    options = dict(
        logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    callback = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    first = L.Trainer(max_steps=3, plugins=[AtomicCheckpointIO()], callbacks=[callback], **options)
    assert isinstance(first.strategy.checkpoint_io, AtomicCheckpointIO)
    first.fit(Tiny(), data)
    last = tmp_path / "last.ckpt"
    assert readable_checkpoint(last) and not list(tmp_path.glob(".*.tmp"))
    second = L.Trainer(max_steps=5, plugins=[AtomicCheckpointIO()], **options)
    second.fit(Tiny(), data, ckpt_path=str(last))
    assert second.global_step == 5


def test_checkpoint_callback_config_writes_last_ckpt_every_epoch_and_resumes_into_it(tmp_path):
    """conf/callbacks/checkpoint.yaml: last.ckpt exists from the end of epoch 1 on (a run killed mid-fit
    has a resume point), and a resumed fit keeps writing that one file (no last-v1.ckpt)."""
    config_file = Path(__file__).resolve().parents[2] / "conf" / "callbacks" / "checkpoint.yaml"
    cfg = OmegaConf.load(config_file).checkpoint
    cfg.dirpath = str(tmp_path / "work")
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=4)
    seen: list[list[str]] = []

    class Watch(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            seen.append(sorted(p.name for p in (tmp_path / "work").glob("*")))

    options = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)
    options |= dict(default_root_dir=tmp_path, plugins=[AtomicCheckpointIO()])
    L.Trainer(max_epochs=3, callbacks=[instantiate(cfg), Watch()], **options).fit(Tiny(), data)
    assert seen == [[], ["last.ckpt"], ["last.ckpt"]]
    resumed = L.Trainer(max_epochs=5, callbacks=[instantiate(cfg)], **options)
    resumed.fit(Tiny(), data, ckpt_path=str(tmp_path / "work" / "last.ckpt"))
    assert resumed.current_epoch == 5
    assert sorted(p.name for p in (tmp_path / "work").glob("*")) == ["last.ckpt"]
    assert torch.load(tmp_path / "work" / "last.ckpt", weights_only=False)["epoch"] == 4


def test_a_checkpoint_of_another_network_is_stale_and_deleted(tmp_path, caplog):
    """A `.partial` left by an older version of the network must not block the rerun: it starts afresh."""
    path = tmp_path / "last.ckpt"
    save_atomic({"state_dict": {"layer.weight": torch.zeros(3, 2), "layer.bias": torch.zeros(3)}}, path)
    with caplog.at_level("WARNING"):
        assert usable_resume_checkpoint(path, Tiny()) is None
    assert not path.exists() and "layer.weight has shape (3, 2)" in caplog.text
    save_atomic({"state_dict": Tiny().state_dict()}, path)
    assert usable_resume_checkpoint(path, Tiny()) == path
