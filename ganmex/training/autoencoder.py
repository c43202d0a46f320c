"""AutoencoderModule: trains the conv autoencoder to reconstruct clean images from box-masked ones.

With `mask_prob > 0` each training image, with that probability, gets `num_boxes` random black boxes;
the loss is always on reconstructing the clean image, so the network learns to in-paint (FIDO) while
still reconstructing unmasked inputs (CEM's manifold term). Validation/test score clean reconstruction
(`<split>/loss`) and in-painting of one fixed-seed box per image (`<split>/inpaint_mse`, inside the box).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def random_box_masks(
    shape: torch.Size | tuple[int, ...],
    min_size: int,
    max_size: int,
    num_boxes: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, 1, H, W) keep-masks: 1 = observed, 0 inside `num_boxes` random squares of side in [min, max]."""
    n, _, h, w = shape
    if not 1 <= min_size <= max_size <= min(h, w):
        raise ValueError(
            f"box sizes min_size={min_size}, max_size={max_size} must satisfy 1 <= min <= max <= {min(h, w)}"
        )
    keep = torch.ones(n, 1, h, w, device=device)
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    for _ in range(num_boxes):
        size = torch.randint(min_size, max_size + 1, (n,), generator=generator).to(device)
        top = (torch.rand(n, generator=generator).to(device) * (h - size + 1)).floor().long()
        left = (torch.rand(n, generator=generator).to(device) * (w - size + 1)).floor().long()
        inside = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + size).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + size).view(n, 1, 1))
        )
        keep[:, 0][inside] = 0.0
    return keep


class AutoencoderModule(L.LightningModule):
    """MSE between AE(masked x) and the clean x; masks only during training."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        mask_prob: float = 0.5,
        min_box: int = 4,
        max_box: int = 14,
        num_boxes: int = 1,
        eval_seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f"autoencoder.masks.prob={mask_prob} must be in [0, 1]")
        self.net = net
        self.optimizer_factory = optimizer
        self.mask_prob = mask_prob
        self.min_box, self.max_box, self.num_boxes = min_box, max_box, num_boxes
        self.eval_seed = eval_seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0]
        inputs = images
        if self.mask_prob > 0:
            keep = random_box_masks(
                images.shape, self.min_box, self.max_box, self.num_boxes, device=images.device
            )
            use = (torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self.mask_prob).float()
            keep = use * keep + (1.0 - use)
            inputs = images * keep
        loss = F.mse_loss(self.net(inputs), images)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch, batch_idx: int, split: str) -> None:
        images = batch[0]
        loss = F.mse_loss(self.net(images), images)
        generator = torch.Generator().manual_seed(self.eval_seed + batch_idx)
        keep = random_box_masks(images.shape, self.min_box, self.max_box, 1, generator, images.device)
        hole = 1.0 - keep
        filled = self.net(images * keep)
        inpaint = ((filled - images) ** 2 * hole).sum() / (hole.sum() * images.shape[1]).clamp_min(1.0)
        self.log(f"{split}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(f"{split}/inpaint_mse", inpaint, on_epoch=True, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def configure_optimizers(self):
        return self.optimizer_factory(params=self.parameters())
