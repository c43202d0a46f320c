"""The trained GANMEX generator as a counterfactual baseline: `counterfactual(x, target)` in [0, 1].

Load a finished `gan-<hash>` artifact with `ganmex.models.loading.load_counterfactual_generator`;
later stages (the `ganmex` baseline, FIDO's in-filler) only call `counterfactual`.
"""

from __future__ import annotations

import torch
from torch import nn

from ganmex.models.stargan import Generator, from_gan, to_gan


class CounterfactualGenerator(nn.Module):
    """Frozen G in eval mode; maps [0, 1] images and target classes to [0, 1] counterfactuals."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def counterfactual(self, x: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        """G(x, t) for a batch x (N, C, H, W) in [0, 1]; `target` is one int or N class indices."""
        if x.dim() != 4:
            raise ValueError(f"counterfactual expects a batch N x C x H x W, got shape {tuple(x.shape)}")
        target = torch.as_tensor(target, device=self.device).long()
        if target.dim() == 0:
            target = target.expand(len(x))
        if len(target) != len(x) or target.min() < 0 or target.max() >= self.num_classes:
            raise ValueError(
                f"target {target.tolist()} must hold {len(x)} class indices in [0, {self.num_classes - 1}]"
            )
        out = from_gan(self.generator(to_gan(x.to(self.device)), target))
        return out.clamp(0, 1).to(x.dtype)

    def forward(self, x: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        return self.counterfactual(x, target)
