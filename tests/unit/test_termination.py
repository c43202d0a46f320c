"""SIGTERM stops fit and test (the evaluate stage runs Trainer.test) with `Terminated`; the CLI exits 143."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganmex import cli
from ganmex.termination import TERMINATED_EXIT_CODE, Terminated, sigterm_raises

SIGNALLED_AT = 2  # the batch whose step sends SIGTERM to this process


class SelfTerminating(L.LightningModule):
    """Sends SIGTERM to its own process at batch SIGNALLED_AT of fit or test, as a scheduler would."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)
        self.steps_after_signal = 0

    def _maybe_signal(self, batch_idx: int) -> None:
        if batch_idx == SIGNALLED_AT:
            os.kill(os.getpid(), signal.SIGTERM)
        elif batch_idx > SIGNALLED_AT:
            self.steps_after_signal += 1

    def training_step(self, batch, batch_idx):
        self._maybe_signal(batch_idx)
        return self.net(batch[0]).mean()

    def test_step(self, batch, batch_idx):
        self._maybe_signal(batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(16, 2)), batch_size=2)


def _trainer() -> L.Trainer:
    return L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu"
    )


def test_lightning_alone_turns_sigterm_into_exit_status_0():
    """Why the handler exists: Lightning's SIGTERMException is a SystemExit without a code."""
    with pytest.raises(SIGTERMException) as stopped:
        _trainer().fit(SelfTerminating(), _loader())
    assert stopped.value.code is None  # `sys.exit(None)`: the shell sees 0


@pytest.mark.parametrize("call", ["fit", "test"])
def test_sigterm_raises_terminated_at_once_in_fit_and_test(call):
    module = SelfTerminating()
    with sigterm_raises(), pytest.raises(Terminated, match="received SIGTERM"):
        getattr(_trainer(), call)(module, _loader())
    assert module.steps_after_signal == 0


def test_sigterm_handler_is_restored_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_cli_exits_143_on_sigterm(make_config, monkeypatch):
    def terminated(cfg):
        raise Terminated("received SIGTERM")

    monkeypatch.setattr("ganmex.pipeline.runner.run", terminated)
    with pytest.raises(SystemExit) as stopped:
        cli.run_job(make_config(["stage=classifier", "logger=none"]))
    assert stopped.value.code == TERMINATED_EXIT_CODE == 143
