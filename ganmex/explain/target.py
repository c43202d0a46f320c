"""The scalar an explanation attributes: `logit_c - logit_t` (one-vs-one, default) or `logit_c`.

Captum methods take one scalar per example; wrapping the classifier in `PairOutput` makes every method
explain the same pair contrast, with the (source, target) classes passed as extra forward arguments.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

OUTPUTS = ("difference", "source")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(
            f"unknown attributed output {output!r}; "
            "choose 'difference' (logit_c - logit_t) or 'source' (logit_c)"
        )
    return output


def pair_scalar(logits: Tensor, source: Tensor, target: Tensor, output: str = "difference") -> Tensor:
    """(N, C) logits -> (N,) attributed scalar for each example's (source, target) pair."""
    check_output(output)
    source = source.to(logits.device).long().view(-1, 1)
    value = logits.gather(1, source).squeeze(1)
    if output == "difference":
        value = value - logits.gather(1, target.to(logits.device).long().view(-1, 1)).squeeze(1)
    return value


class PairOutput(nn.Module):
    """model(x) -> (N,) scalar of the pair; `forward(x, source, target)` is what Captum differentiates."""

    def __init__(self, model: nn.Module, output: str = "difference") -> None:
        super().__init__()
        self.model = model
        self.output = check_output(output)

    def forward(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        return pair_scalar(self.model(x), source, target, self.output)


def check_pairs(inputs: Tensor, source: Tensor, target: Tensor, num_classes: int | None = None) -> None:
    """Explanations are batched: one (source, target) per input row."""
    if inputs.dim() != 4:
        raise ValueError(f"inputs must be NCHW images, got shape {tuple(inputs.shape)}")
    n = inputs.shape[0]
    for name, labels in (("source", source), ("target", target)):
        if not isinstance(labels, Tensor) or labels.shape != (n,):
            shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"{name} must be a tensor of {n} class indices (one per input), got {shape}")
        if num_classes is not None and labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} classes must lie in [0, {num_classes}), got {labels.tolist()}")


@torch.no_grad()
def scalar_of(
    model: nn.Module, x: Tensor, source: Tensor, target: Tensor, output: str = "difference"
) -> Tensor:
    """The attributed scalar at x (for completeness checks: sum(attr) = f(x) - f(baseline))."""
    return pair_scalar(model(x), source, target, output)
