"""Which (source, target) pairs to explain for a batch: all targets, the runner-up, a random or a fixed one.

The source is the classifier's prediction by default (explaining its decision), or given labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

STRATEGIES = ("all", "runner_up", "random", "fixed")
SOURCES = ("predicted", "label")


@dataclass
class Pairs:
    """Pair k explains row `index[k]` of the batch: why `source[k]` rather than `target[k]`."""

    index: Tensor
    source: Tensor
    target: Tensor

    def __len__(self) -> int:
        return len(self.index)


def select_pairs(
    logits: Tensor,
    strategy: str = "runner_up",
    labels: Tensor | None = None,
    fixed_target: int | None = None,
    seed: int = 0,
) -> Pairs:
    """Pairs for a batch from its logits (N, C); `labels` replaces the predicted source classes.

    `fixed` drops rows whose source already is `fixed_target` (there is no contrast to explain).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pair strategy {strategy!r}; choose one of {STRATEGIES}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, classes), got shape {tuple(logits.shape)}")
    n, classes = logits.shape
    if classes < 2:
        raise ValueError("one-vs-one pairs need at least 2 classes")
    logits = logits.detach()
    source = logits.argmax(1) if labels is None else labels.to(logits.device).long()
    if source.shape != (n,):
        raise ValueError(f"labels must hold one class per row ({n}), got shape {tuple(source.shape)}")
    rows = torch.arange(n, device=logits.device)
    others = torch.ones(n, classes, dtype=torch.bool, device=logits.device)
    others[rows, source] = False
    if strategy == "all":
        index, target = others.nonzero(as_tuple=True)
        return Pairs(index, source[index], target)
    if strategy == "runner_up":
        target = logits.masked_fill(~others, float("-inf")).argmax(1)
        return Pairs(rows, source, target)
    if strategy == "random":
        generator = torch.Generator().manual_seed(seed)
        draw = torch.rand(n, classes, generator=generator).to(logits.device).masked_fill(~others, -1.0)
        return Pairs(rows, source, draw.argmax(1))
    if fixed_target is None or not 0 <= fixed_target < classes:
        raise ValueError(f"pairs strategy=fixed needs fixed_target in [0, {classes}), got {fixed_target}")
    keep = source != fixed_target
    return Pairs(rows[keep], source[keep], torch.full_like(source[keep], fixed_target))


@dataclass(frozen=True)
class PairSelector:
    """The run's one pair rule (the `pairs` config node): read by mode=report, mode=explain and the
    attributions grid, so every view shows the pairs that were scored.

    `source`: predicted (explain the classifier's decision) or label; `offset` of `select` varies the
    random draw per batch (the evaluation passes the batch index)."""

    strategy: str = "runner_up"
    source: str = "predicted"
    fixed_target: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"pairs.strategy={self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.source not in SOURCES:
            raise ValueError(f"pairs.source={self.source!r}; choose one of {', '.join(SOURCES)}")

    def select(self, logits: Tensor, labels: Tensor | None = None, offset: int = 0) -> Pairs:
        if self.source == "label" and labels is None:
            raise ValueError("pairs.source=label needs the images' labels")
        return select_pairs(
            logits,
            self.strategy,
            labels if self.source == "label" else None,
            self.fixed_target,
            self.seed + offset,
        )
