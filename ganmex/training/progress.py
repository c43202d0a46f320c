"""Training progress as log lines when nobody watches a terminal (CI, nohup, SLURM).

Lightning's progress bar is written for a TTY; redirected to a file it leaves one frame at the end, so a
10-minute GAN stage looks hung. Off a TTY this callback logs (logger `ganmex.progress`, so into the Hydra
run's log file) a line when fit starts, at least every `interval_s` seconds, and at the end, e.g.

    gan: step 240/1200 (20%), epoch 3 — train/g_loss 1.234, val/validity 0.95 — elapsed 1:02, ETA 4:08

On a TTY it does nothing: the bar is there. Config: conf/callbacks/progress_log.yaml.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L

from ganmex.progress_text import format_counts, format_duration, format_eta, stdout_is_tty

log = logging.getLogger("ganmex.progress")


def fit_budget(trainer: L.Trainer) -> tuple[str, int, int]:
    """(unit, done, total): optimizer steps when `max_steps` bounds the fit, else batches over all epochs
    (total 0 when unbounded or of unknown length: then no percent and no ETA)."""
    if trainer.max_steps is not None and trainer.max_steps > 0:
        return "step", min(trainer.global_step, trainer.max_steps), trainer.max_steps
    per_epoch = trainer.num_training_batches
    if trainer.max_epochs is None or trainer.max_epochs < 0 or not isinstance(per_epoch, int):
        return "step", trainer.global_step, 0
    in_epoch = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    total = trainer.max_epochs * per_epoch
    return "batch", min(trainer.current_epoch * per_epoch + in_epoch, total), total


def format_metrics(metrics: Mapping[str, Any], digits: int) -> str:
    """`key value` pairs with `digits` significant digits, sorted by key (stable lines are easier to read)."""
    parts = []
    for key in sorted(metrics):
        try:
            number = float(metrics[key])
        except (TypeError, ValueError):
            continue
        parts.append(f"{key} {number:.{digits}g}")
    return ", ".join(parts)


class ProgressLogCallback(L.Callback):
    """Log fit progress every `interval_s` seconds when stdout is not a TTY (rank zero only).

    `name`: the stage (build_trainer fills it); `digits`: significant digits of the metrics shown (those the
    module logs with prog_bar=True); `tty`: None asks stdout; `clock` is injectable for tests.
    """

    def __init__(
        self,
        name: str | None = None,
        interval_s: float = 30.0,
        digits: int = 4,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"progress.interval_s={interval_s} must be >= 0 (seconds between log lines)")
        self.name = name or "fit"
        self.interval_s = interval_s
        self.digits = digits
        self.tty = tty
        self._clock = clock
        self._started = 0.0
        self._start_done = 0
        self._last_line = 0.0

    def _active(self, trainer: L.Trainer) -> bool:
        tty = stdout_is_tty() if self.tty is None else self.tty
        return not tty and trainer.is_global_zero and not trainer.sanity_checking

    def line(self, trainer: L.Trainer, ended: bool = False) -> str:
        unit, done, total = fit_budget(trainer)
        elapsed = self._clock() - self._started
        counted = f"{unit} {format_counts(done, total)}" if total > 0 else f"{unit} {done}"
        epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        # current_epoch is 0-based while running; after fit it has moved past the last epoch that ran
        epoch = max(trainer.current_epoch, 1) if ended else trainer.current_epoch + 1
        epoch = min(epoch, epochs) if epochs else epoch
        epoch_text = f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"
        shown = format_metrics(
            {k: v for k, v in trainer.progress_bar_metrics.items() if k != "v_num"}, self.digits
        )
        # ETA from this fit's own pace: a resumed fit starts at its checkpoint's step
        eta = format_eta(elapsed, done - self._start_done, total - self._start_done) if total > 0 else "?"
        return (
            f"{self.name}: {counted}, {epoch_text}"
            + (f" — {shown}" if shown else "")
            + f" — elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._last_line = self._clock()
        self._start_done = fit_budget(trainer)[1]
        if self._active(trainer):
            log.info("%s", self.line(trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now = self._clock()
        _, done, total = fit_budget(trainer)
        if total > 0 and done >= total:
            return  # the end-of-fit line follows at once
        if now - self._last_line >= self.interval_s and self._active(trainer):
            self._last_line = now
            log.info("%s", self.line(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer):
            log.info("%s (done)", self.line(trainer, ended=True))


def terminal_progress_bar(**kwargs: Any) -> L.Callback:
    """Lightning's RichProgressBar, switched off when stdout is not a TTY.

    Redirected to a file, the bar leaves a single stale frame per stage (for a step-bounded GAN one that
    reads `Epoch 0/-2 ... 30/60 ... 0:01:36` when fit is over); ProgressLogCallback writes lines there
    instead. A disabled bar (rather than none) keeps Lightning from adding its default TQDM bar.
    """
    from lightning.pytorch.callbacks import RichProgressBar

    bar = RichProgressBar(**kwargs)
    if not stdout_is_tty():
        bar.disable()
    return bar
