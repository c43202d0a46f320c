"""ClassifierModule: trains the network that later gets explained."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class ClassifierModule(L.LightningModule):
    """Cross-entropy training with accuracy per split and per-class accuracy on test (without an
    optimizer it only scores a finished network: an imported one)."""

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: Callable | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # ModuleDict keys may not shadow nn.Module attributes such as `train`
        self.accuracy = nn.ModuleDict(
            {
                f"{split}_acc": MulticlassAccuracy(num_classes, average="micro")
                for split in ("train", "val", "test")
            }
        )
        self.test_per_class = MulticlassAccuracy(num_classes, average=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, split: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.accuracy[f"{split}_acc"](logits, labels)
        on_step = split == "train"
        self.log(
            f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=on_step, sync_dist=not on_step
        )
        self.log(f"{split}/acc", self.accuracy[f"{split}_acc"], on_step=False, on_epoch=True, prog_bar=True)
        if split == "test":
            self.test_per_class.update(logits, labels)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        for cls, acc in enumerate(self.test_per_class.compute()):
            self.log(f"test/acc_class_{cls}", acc, sync_dist=True)
        self.test_per_class.reset()

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("this ClassifierModule only scores an imported model: it has no optimizer")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
