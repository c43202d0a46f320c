"""The trained GANMEX generator as a counterfactual baseline: `counterfactual(x, target)` in [0, 1].

Load a finished `gan-<hash>` artifact with `ganmex.models.loading.load_counterfactual_generator`;
later stages (the `ganmex` baseline, FIDO's in-filler) only call `counterfactual`.
"""

from __future__ import annotations

import torch
from torch import nn

from ganmex.models.inputs import as_pixels, as_targets
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
        """G(x, t) for a batch x (N, C, H, W) of pixels in [0, 1]; `target` is one class index or N.

        Input contract (`ganmex.models.inputs`): uint8 images are divided by 255; floats outside
        [0, 1] and non-integral targets raise ValueError; an empty batch returns an empty batch.
        """
        x = as_pixels(x)
        target = as_targets(target, len(x), self.num_classes, self.device)
        if len(x) == 0:
            return x.clone()
        out = from_gan(self.generator(to_gan(x.to(self.device)), target))
        return out.clamp(0, 1).to(x.dtype)

    def forward(self, x: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        return self.counterfactual(x, target)
