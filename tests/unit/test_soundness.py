"""Soundness: a NaN loss stops training, metrics under their floors or non-finite block the commit."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn

from ganmex.errors import ConfigError, UnsoundTrainingError
from ganmex.training.soundness import NonFiniteLossCallback, check_finite_module, check_sound


class ToyModule(L.LightningModule):
    """Linear regression whose loss turns NaN from step `nan_from` on (as an exploding lr would)."""

    def __init__(self, nan_from: int) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.nan_from = nan_from
        self.steps_run = 0

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = self.layer(x).pow(2).mean()
        if self.global_step >= self.nan_from:
            loss = loss * float("nan")
        self.steps_run += 1
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(module: ToyModule, tmp_path, max_steps: int = 20) -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 2)), batch_size=4)
    trainer = L.Trainer(
        max_steps=max_steps,
        callbacks=[NonFiniteLossCallback("classifier")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, data)


def test_nan_loss_stops_training_at_that_step_with_a_clear_error(tmp_path):
    module = ToyModule(nan_from=3)
    with pytest.raises(
        UnsoundTrainingError, match=r"classifier training stopped after 4 optimizer steps: .*loss.*nan"
    ) as info:
        _fit(module, tmp_path)
    assert module.steps_run == 4  # steps 0-2 finite, step 3 NaN: stopped there, not after 20 steps
    assert "lower classifier.optimizer.lr or check the data" in str(info.value) and ".partial" in str(
        info.value
    )
    assert "\n" not in str(info.value)


def test_finite_training_runs_its_whole_budget(tmp_path):
    module = ToyModule(nan_from=10**9)
    _fit(module, tmp_path, max_steps=6)
    assert module.steps_run == 6


def test_check_sound_names_stage_metric_value_floor_key_and_partial():
    metrics = {"val/acc": 0.42, "val/loss": 1.7}
    with pytest.raises(UnsoundTrainingError) as info:
        check_sound("classifier", metrics, {"val/acc": (0.8, "classifier.min_val_acc")})
    message = str(info.value)
    for part in ("classifier", "val/acc=0.42", "classifier.min_val_acc=0.8", ".partial"):
        assert part in message
    assert isinstance(info.value, ConfigError)  # the CLI reports it as one line


def test_check_sound_passes_at_and_above_the_floor_and_skips_null_floors():
    check_sound("gan", {"val/validity": 0.5}, {"val/validity": (0.5, "gan.min_validity")})
    check_sound("gan", {"val/validity": 0.1}, {"val/validity": (None, "gan.min_validity")})
    check_sound("gan", {"val/validity": 0.9}, {"val/validity": 0.5})


def test_check_sound_plain_float_floor_derives_the_key():
    with pytest.raises(UnsoundTrainingError, match=r"gan\.min_validity=0\.5"):
        check_sound("gan", {"val/validity": 0.3}, {"val/validity": 0.5})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), torch.tensor(float("-inf"))])
def test_check_sound_rejects_non_finite_metrics_even_without_floors(bad):
    with pytest.raises(UnsoundTrainingError, match=r"train/loss=.*(nan|inf) is not finite"):
        check_sound("autoencoder", {"train/loss": bad, "val/loss": 0.1}, {})


def test_check_sound_requires_a_floored_metric_to_be_logged():
    with pytest.raises(UnsoundTrainingError, match=r"logged no val/acc .*classifier.min_val_acc"):
        check_sound("classifier", {"train/loss": 0.3}, {"val/acc": (0.8, "classifier.min_val_acc")})


def test_check_finite_module_names_the_artifact_and_the_tensor():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    check_finite_module(net, "classifier artifact X")
    with torch.no_grad():
        net[0].weight[1, 2] = math.nan
    with pytest.raises(
        UnsoundTrainingError, match=r"classifier artifact X has non-finite weights \(0\.weight\)"
    ):
        check_finite_module(net, "classifier artifact X")
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    net[1].running_var.fill_(math.inf)
    with pytest.raises(UnsoundTrainingError, match=r"1\.running_var"):
        check_finite_module(net, "classifier artifact X")


class ManualToy(ToyModule):
    """Manual optimisation (as the GAN stage) returns no loss: only the logged metrics tell."""

    def __init__(self, nan_from: int) -> None:
        super().__init__(nan_from)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        (x,) = batch
        loss = self.layer(x).pow(2).mean()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.steps_run += 1
        bad = float("inf") if batch_idx >= self.nan_from else 0.0
        self.log("train/g_cls_loss", loss.detach() + bad)


def test_manual_optimisation_stops_on_a_logged_infinite_loss(tmp_path):
    module = ManualToy(nan_from=2)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 2)), batch_size=4)
    trainer = L.Trainer(
        max_steps=20,
        callbacks=[NonFiniteLossCallback("gan")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(
        UnsoundTrainingError, match=r"train/g_cls_loss=inf is not finite; lower gan.g_optimizer.lr"
    ):
        trainer.fit(module, data)
    assert module.steps_run == 3
