"""StepCheckpoint saves resume points under manual optimisation at each crossed multiple, without warning."""

from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from ganmex.training.checkpoint_callbacks import StepCheckpoint


class TwoOptimizers(L.LightningModule):
    """Manual optimisation with two optimizer steps per batch, like the GAN's critic + generator."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a = torch.nn.Linear(2, 1)
        self.b = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        for net, opt in zip((self.a, self.b), self.optimizers(), strict=True):
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)]


def saved_steps(callback_type: type[ModelCheckpoint], tmp_path, max_steps: int, every: int):
    """Fit; return the global steps at which a last.ckpt was written, and the warnings raised."""
    steps: list[int] = []

    class Spy(callback_type):
        def _save_last_checkpoint(self, trainer, candidates):
            steps.append(trainer.global_step)
            super()._save_last_checkpoint(trainer, candidates)

    data = DataLoader(TensorDataset(torch.randn(40, 2), torch.randn(40, 1)), batch_size=4)
    callback = Spy(dirpath=tmp_path, save_last=True, save_top_k=0, every_n_train_steps=every)
    trainer = L.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TwoOptimizers(), data)
    manual = [w for w in caught if "manual optimization and every_n_train_steps" in str(w.message)]
    return steps, manual


def test_lightning_checkpoint_warns_and_skips_multiples(tmp_path):
    """The behaviour StepCheckpoint fixes (if Lightning changes it, this test tells us to drop the class)."""
    steps, manual = saved_steps(ModelCheckpoint, tmp_path, max_steps=10, every=3)
    assert manual, "Lightning no longer warns under manual optimisation"
    assert steps == [6]  # global_step runs 2, 4, 6, 8, 10: 3 and 9 are never seen


def test_step_checkpoint_saves_at_each_crossed_multiple_quietly(tmp_path):
    steps, manual = saved_steps(StepCheckpoint, tmp_path, max_steps=10, every=3)
    assert manual == []
    assert steps == [4, 6, 10]  # crossed 3, 6 and 9
    state = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert state["global_step"] == 10
    assert len(state["optimizer_states"]) == 2  # a full resume point: both optimizers' state
