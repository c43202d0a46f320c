"""Counterfactual grids: one row per input, column 0 the input, then one column per target class.

`CounterfactualGridCallback` draws the grid from a fixed validation batch after every validation
epoch, saves it as PNG (atomically) and sends it to every logger that takes images. It only needs
the LightningModule to expose `counterfactuals(x, target) -> [0, 1] images` and `num_classes`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid, save_image

log = logging.getLogger(__name__)


def pick_one_per_class(images: torch.Tensor, labels: torch.Tensor, num_classes: int, per_class: int = 1):
    """The first `per_class` images of every class present, ordered by class (grid rows)."""
    rows = [torch.nonzero(labels == c).flatten()[:per_class] for c in range(num_classes)]
    index = torch.cat(rows)
    return images[index], labels[index]


@torch.no_grad()
def counterfactual_grid(generate, images: torch.Tensor, num_classes: int, padding: int = 2) -> torch.Tensor:
    """A (C, H', W') image in [0, 1]: row i = [x_i, G(x_i, 0), ..., G(x_i, K-1)]."""
    n = len(images)
    columns = [images]
    for t in range(num_classes):
        target = torch.full((n,), t, dtype=torch.long, device=images.device)
        columns.append(generate(images, target).to(images.dtype))
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: input, then targets
    return make_grid(tiles.float().cpu(), nrow=num_classes + 1, padding=padding, pad_value=1.0)


def save_grid_png(grid: torch.Tensor, path: str | Path) -> Path:
    """Write through a temp file and rename, so a viewer never sees half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    save_image(grid, tmp)
    os.replace(tmp, path)
    return path


def log_grid_image(loggers, key: str, grid: torch.Tensor, step: int) -> list[str]:
    """Send the grid to every logger that can take images; returns the names of those that did."""
    sent = []
    for logger in loggers or []:
        experiment = getattr(logger, "experiment", None)
        if hasattr(logger, "log_image"):  # WandbLogger
            logger.log_image(key=key, images=[grid.permute(1, 2, 0).numpy()], step=step)
            sent.append(type(logger).__name__)
        elif experiment is not None and hasattr(experiment, "add_image"):  # TensorBoard
            experiment.add_image(key, grid, global_step=step)
            sent.append(type(logger).__name__)
    return sent


class CounterfactualGridCallback(L.Callback):
    """After each validation epoch: grid of `per_class` val inputs per class x every target."""

    def __init__(self, output_paths: list[str | Path], per_class: int = 1, key: str = "val/counterfactuals"):
        self.output_paths = [Path(p) for p in output_paths]
        self.per_class = per_class
        self.key = key
        self.inputs: torch.Tensor | None = None
        self.last_grid: torch.Tensor | None = None

    def _fixed_inputs(self, trainer: L.Trainer, module: L.LightningModule) -> torch.Tensor:
        if self.inputs is None:
            data = trainer.datamodule.dataset("val")
            labels = torch.as_tensor(data.labels)
            index = pick_one_per_class(torch.arange(len(labels)), labels, module.num_classes, self.per_class)[
                0
            ]
            self.inputs = torch.stack([data[int(i)][0] for i in index])
        return self.inputs.to(module.device)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        grid = counterfactual_grid(
            pl_module.counterfactuals, self._fixed_inputs(trainer, pl_module), pl_module.num_classes
        )
        self.last_grid = grid
        for path in self.output_paths:
            save_grid_png(grid, path)
        log_grid_image(trainer.loggers, self.key, grid, trainer.global_step)
