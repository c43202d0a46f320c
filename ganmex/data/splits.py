"""Stratified, shuffled splits: embedded MNIST arrives sorted by class."""

from __future__ import annotations

import torch


def stratified_split(labels: torch.Tensor, fractions: dict[str, float], seed: int) -> dict[str, torch.Tensor]:
    """Split indices per class by `fractions` (must sum to 1), shuffled with `seed`.

    Every split gets the same class proportions as the whole set; the order inside each
    split is shuffled so that no split is sorted by class.
    """
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions {dict(fractions)} sum to {total}, they must sum to 1")
    if any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be >= 0, got {dict(fractions)}")
    generator = torch.Generator().manual_seed(seed)
    names = list(fractions)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for cls in labels.unique(sorted=True):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        start = 0
        for i, name in enumerate(names):
            stop = len(idx) if i == len(names) - 1 else start + round(fractions[name] * len(idx))
            parts[name].append(idx[start:stop])
            start = stop
    result = {}
    for name, chunks in parts.items():
        merged = torch.cat(chunks)
        result[name] = merged[torch.randperm(len(merged), generator=generator)]
    return result
