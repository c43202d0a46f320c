"""Step-based resume checkpoints that work under manual optimisation (the GAN stage).

Lightning 2.6's `ModelCheckpoint.on_train_batch_end` has a separate manual-optimisation branch: unless the
module carries a `saved_models` dict and a `layer` attribute (a shape taken from Lightning's own test), it
warns on every save that the checkpoint holds the state AFTER the optimizer step, with a 12-line code
example. For a resume checkpoint that is exactly the state we want: weights, optimizer moments and the
loop's step counter all describe the same moment, so training continues where it stopped.

It also tests `global_step % every_n_train_steps == 0`, but under manual optimisation `global_step` counts
every `optimizer.step()` (critic and generator: 2 per batch with n_critic=1), so most multiples are
stepped over (every_n=5 saves only every 10 steps; every_n=3 every 6). `StepCheckpoint` saves when the
step count crosses a multiple instead. Automatic optimisation keeps Lightning's behaviour.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` whose `every_n_train_steps` saves at each crossed multiple, quietly, under manual
    optimisation. Uses ModelCheckpoint's (private) save helpers, as its own hook does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._previous_step = trainer.global_step  # a resumed fit starts at its checkpoint's step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if pl_module.automatic_optimization:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        every, step = self._every_n_train_steps, trainer.global_step
        crossed = every >= 1 and step // every > self._previous_step // every
        self._previous_step = step
        if not crossed or self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            self._defer_save_until_validation = True  # as Lightning does: save once validation logged it
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
