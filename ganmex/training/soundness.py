"""Refuse to commit what did not train: non-finite losses or weights, metrics below their floors.

A stage calls `NonFiniteLossCallback` while it trains (it stops at the first NaN/inf loss instead of
spending the whole budget on garbage), `check_sound` on the final metrics before committing the
artifact, and `check_finite_module` on networks it loads from other artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from ganmex.errors import UnsoundTrainingError

# logged metric names the callback watches: every loss a module logs (train/loss, train/g_cls_loss, ...)
LOSS_MARKER = "loss"
# the learning-rate keys to name when a stage's loss blows up (default: `<stage>.optimizer.lr`)
LR_KEYS = {"gan": "gan.g_optimizer.lr / gan.d_optimizer.lr"}


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else float("nan")
    return float(value)


class NonFiniteLossCallback(L.Callback):
    """Stops training with UnsoundTrainingError as soon as a logged loss is NaN or infinite.

    Checked after every training batch on `trainer.callback_metrics` (what the module logged with
    `self.log`), and on the loss the step returned when it returned one.
    """

    def __init__(self, stage: str, hint: str | None = None) -> None:
        super().__init__()
        self.stage = stage
        self.hint = hint or f"lower {LR_KEYS.get(stage, f'{stage}.optimizer.lr')} or check the data"

    def _fail(self, name: str, value: float, step: int) -> None:
        raise UnsoundTrainingError(
            f"{self.stage} training stopped after {step} optimizer steps: {name}={value} is not finite; "
            f"{self.hint}; the unfinished artifact is left in its .partial directory"
        )

    def _first_non_finite(self, trainer: L.Trainer, outputs) -> tuple[str, float] | None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        watched = {"the training step's loss": loss} if isinstance(loss, torch.Tensor) else {}
        watched.update({k: v for k, v in trainer.callback_metrics.items() if LOSS_MARKER in k})
        values = [torch.as_tensor(v).detach().float().reshape(-1)[:1].cpu() for v in watched.values()]
        if not values or torch.isfinite(torch.cat(values)).all():  # one device sync per step
            return None
        return next((k, _as_float(v)) for k, v in watched.items() if not math.isfinite(_as_float(v)))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx):
        found = self._first_non_finite(trainer, outputs)
        # every rank stops together: a rank that raised alone would leave the others in an all-reduce
        if trainer.strategy.reduce_boolean_decision(found is not None, all=False):
            name, value = found or ("a loss on another process", float("nan"))
            self._fail(name, value, trainer.global_step)


def check_sound(stage: str, metrics: Mapping[str, Any], expectations: Mapping[str, float]) -> None:
    """Raise UnsoundTrainingError when a metric is non-finite or under its floor.

    `expectations` maps a metric name to (floor, config key), e.g.
    `{"val/acc": (0.8, "classifier.min_val_acc")}`; a plain float floor is accepted too (the key is
    then reported as `<stage>.min_<metric>`). A floor of None switches that check off; an expected
    metric that was never logged is an error too (the stage did not validate).
    """
    for name, value in metrics.items():
        number = _as_float(value)
        if not math.isfinite(number):
            raise UnsoundTrainingError(
                f"{stage} training is unsound: {name}={number} is not finite; lower the learning rate or "
                f"check the data, then rerun; the artifact was left unfinished in its .partial directory"
            )
    for name, spec in expectations.items():
        floor, key = spec if isinstance(spec, tuple) else (spec, f"{stage}.min_{name.rsplit('/', 1)[-1]}")
        if floor is None:
            continue
        if name not in metrics:
            raise UnsoundTrainingError(
                f"{stage} training logged no {name} to check against {key}={floor}; enable validation "
                f"(limit_val_batches > 0) or set {key}=null; the artifact was left in its .partial directory"
            )
        number = _as_float(metrics[name])
        if number < floor:
            raise UnsoundTrainingError(
                f"{stage} training is unsound: {name}={number:.4g} is below the floor {key}={floor}; "
                f"train longer or fix the config, or lower {key} to accept it; "
                f"the artifact was left unfinished in its .partial directory"
            )


def check_finite_module(module: nn.Module, name: str) -> None:
    """Raise UnsoundTrainingError when a loaded network holds NaN/inf parameters or buffers."""
    for label, tensor in (*module.named_parameters(), *module.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UnsoundTrainingError(f"{name} has non-finite weights ({label}); delete it and retrain it")
