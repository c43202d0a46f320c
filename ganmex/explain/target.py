"""The one scalar of a (source c, target t) pair that explanations attribute, metrics score and FIDO moves.

`contrast` (the top-level config key, docs/report.md) picks it:
- `one_vs_one`: logit_c - logit_t, why c rather than t (the default; GANMEX's one-vs-one question);
- `logit_c`: logit_c alone;
- `log_odds`: log p(c) - log sum_{c' != c} p(c'), FIDO's original score.

Captum methods take one scalar per example; wrapping the classifier in `PairOutput` makes every method
explain the same contrast, with the (source, target) classes passed as extra forward arguments.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Contrast = Literal["one_vs_one", "logit_c", "log_odds"]
CONTRASTS: tuple[str, ...] = ("one_vs_one", "logit_c", "log_odds")


def check_contrast(contrast: str) -> str:
    if contrast not in CONTRASTS:
        raise ValueError(
            f"unknown contrast {contrast!r}; choose one_vs_one (logit_c - logit_t), logit_c or log_odds"
        )
    return contrast


def pair_scalar(
    logits: Tensor, source: Tensor, target: Tensor | None, contrast: str = "one_vs_one"
) -> Tensor:
    """(N, K) logits -> (N,) contrast of each example's (source, target) pair."""
    check_contrast(contrast)
    source = source.to(logits.device).long().view(-1, 1)
    own = logits.gather(1, source).squeeze(1)
    if contrast == "logit_c":
        return own
    if contrast == "log_odds":
        return own - logits.scatter(1, source, float("-inf")).logsumexp(1)
    if target is None:
        raise ValueError("contrast one_vs_one needs target classes (logit_c - logit_t)")
    return own - logits.gather(1, target.to(logits.device).long().view(-1, 1)).squeeze(1)


class PairOutput(nn.Module):
    """model(x) -> (N,) contrast of the pair; `forward(x, source, target)` is what Captum differentiates.

    `max_batch` splits larger inputs into near-equal passes of at most that many images: Captum's occlusion
    evaluates thousands of perturbed images at once, which spill a CPU's caches. Equal chunks are never of
    one or two images, whose matrix products take another kernel than the whole batch's.
    """

    def __init__(self, model: nn.Module, contrast: str = "one_vs_one", max_batch: int | None = None) -> None:
        super().__init__()
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or null (one pass), got {max_batch}")
        self.model = model
        self.contrast = check_contrast(contrast)
        self.max_batch = max_batch

    def forward(self, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
        n = x.shape[0]
        if self.max_batch is None or n <= self.max_batch:
            return pair_scalar(self.model(x), source, target, self.contrast)
        parts = -(-n // self.max_batch)
        return torch.cat(
            [
                pair_scalar(self.model(xs), s, t, self.contrast)
                for xs, s, t in zip(
                    x.tensor_split(parts), source.tensor_split(parts), target.tensor_split(parts), strict=True
                )
            ]
        )


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
    model: nn.Module, x: Tensor, source: Tensor, target: Tensor, contrast: str = "one_vs_one"
) -> Tensor:
    """The attributed scalar at x (for completeness checks: sum(attr) = f(x) - f(baseline))."""
    return pair_scalar(model(x), source, target, contrast)
