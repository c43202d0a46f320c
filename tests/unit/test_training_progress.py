"""ProgressLogCallback: off a TTY, a line at fit start, at least one per interval, one at the end."""

from __future__ import annotations

import logging
import re

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganmex.training.progress import ProgressLogCallback, format_metrics

SECONDS_PER_BATCH = 10.0


class Tiny(L.LightningModule):
    """A linear regressor whose every training step advances the fake clock by SECONDS_PER_BATCH."""

    def __init__(self, clock: dict) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.clock = clock

    def training_step(self, batch, batch_idx):
        self.clock["t"] += SECONDS_PER_BATCH
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(callback_kwargs: dict, **trainer_kwargs) -> list[str]:
    clock = {"t": 0.0}
    data = DataLoader(TensorDataset(torch.randn(16, 2), torch.randn(16, 1)), batch_size=4)  # 4 batches
    callback = ProgressLogCallback(name="classifier", clock=lambda: clock["t"], **callback_kwargs)
    trainer = L.Trainer(
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **trainer_kwargs,
    )
    trainer.fit(Tiny(clock), data)
    return trainer


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="ganmex.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "ganmex.progress"]


def strip_metrics(line: str) -> str:
    return re.sub(r" — train/loss [-0-9.e]+", "", line)


def test_epoch_budget_logs_start_every_interval_and_end(lines):
    fit({"interval_s": 25, "tty": False}, max_epochs=2)
    out = lines()
    # 10 s per batch, a line when >= 25 s passed since the last: after batches 3 and 6 of 8
    assert [strip_metrics(x) for x in out] == [
        "classifier: batch 0/8 (0%), epoch 1/2 — elapsed 0:00, ETA ?",
        "classifier: batch 3/8 (37%), epoch 1/2 — elapsed 0:30, ETA 0:50",
        "classifier: batch 6/8 (75%), epoch 2/2 — elapsed 1:00, ETA 0:20",
        "classifier: batch 8/8 (100%), epoch 2/2 — elapsed 1:20, ETA 0:00 (done)",
    ]
    assert re.search(r" — train/loss [0-9.e-]+ — ", out[1])


def test_step_budget_counts_optimizer_steps(lines):
    fit({"interval_s": 1000, "tty": False}, max_steps=6, max_epochs=-1)
    out = [strip_metrics(x) for x in lines()]
    assert out == [
        "classifier: step 0/6 (0%), epoch 1 — elapsed 0:00, ETA ?",
        "classifier: step 6/6 (100%), epoch 2 — elapsed 1:00, ETA 0:00 (done)",
    ]


def test_on_a_terminal_it_stays_silent(lines):
    fit({"interval_s": 0, "tty": True}, max_epochs=1)
    assert lines() == []


def test_format_metrics_rounds_and_sorts():
    assert format_metrics({"val/acc": torch.tensor(0.91666), "train/loss": 1.23456, "note": "x"}, 3) == (
        "train/loss 1.23, val/acc 0.917"
    )


def test_negative_interval_is_named():
    with pytest.raises(ValueError, match="progress.interval_s=-1"):
        ProgressLogCallback(interval_s=-1)


def test_default_callbacks_config_builds_it_with_the_stage_name(tmp_path):
    from conftest import compose_config

    from ganmex.pipeline.build import _instantiate_named

    cfg = compose_config(tmp_path)
    built = _instantiate_named(cfg.callbacks, {"name": "gan", "dirpath": str(tmp_path), "version": "gan"})
    progress = [c for c in built if isinstance(c, ProgressLogCallback)]
    assert len(progress) == 1
    assert (progress[0].name, progress[0].interval_s) == ("gan", 30)


@pytest.mark.parametrize("tty", [True, False])
def test_terminal_progress_bar_only_draws_on_a_tty(monkeypatch, tty):
    import ganmex.training.progress as progress

    monkeypatch.setattr(progress, "stdout_is_tty", lambda: tty)
    bar = progress.terminal_progress_bar(leave=True)
    assert bar.is_enabled is tty
    assert bar._leave is True  # keyword arguments reach RichProgressBar


def test_last_step_is_logged_once_as_done(lines):
    fit({"interval_s": 0, "tty": False}, max_steps=3, max_epochs=-1)
    assert [strip_metrics(x).split(", epoch")[0] for x in lines()] == [
        "classifier: step 0/3 (0%)",
        "classifier: step 1/3 (33%)",
        "classifier: step 2/3 (66%)",
        "classifier: step 3/3 (100%)",
    ]
    assert lines()[-1].endswith("(done)")
