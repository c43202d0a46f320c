"""What every faithfulness metric shares: the scored scalar (the run's `contrast`, the same function the
explanations attribute: ganmex.explain.target.pair_scalar), input checks and batched scoring.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganmex.explain.target import pair_scalar

# model(x) -> logits, or explain_fn(x, source, target) -> attributions
Model = nn.Module | Callable[[Tensor], Tensor]


def check_images(inputs: Tensor, name: str = "inputs") -> Tensor:
    if not isinstance(inputs, Tensor) or inputs.dim() != 4 or not inputs.is_floating_point():
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"{name} must be a float NCHW tensor in [0, 1], got {shape}")
    return inputs


def spatial_attributions(attributions: Tensor, inputs: Tensor) -> Tensor:
    """(N, H*W) attribution per pixel, summed over channels: a pixel is one feature in every metric."""
    n, _, h, w = inputs.shape
    a = attributions
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.dim() != 4 or a.shape[0] != n or a.shape[-2:] != (h, w):
        raise ValueError(
            f"attributions of shape {tuple(attributions.shape)} do not match inputs {tuple(inputs.shape)}; "
            f"pass (N, C, H, W), (N, 1, H, W) or (N, H, W) attributions for the same images"
        )
    return a.to(inputs.dtype).sum(1).reshape(n, h * w)


def reference_like(reference: Tensor, inputs: Tensor) -> Tensor:
    """A reference image batch broadcast to the inputs' shape (a single image or a scalar also works)."""
    if not isinstance(reference, Tensor):
        raise ValueError(f"reference must be a tensor shaped like inputs, got {type(reference).__name__}")
    try:
        return torch.broadcast_to(reference.to(inputs), inputs.shape)
    except RuntimeError as err:
        raise ValueError(
            f"reference of shape {tuple(reference.shape)} cannot broadcast to inputs {tuple(inputs.shape)}"
        ) from err


def batched_scores(
    model: Model, images: Tensor, source: Tensor, target: Tensor, contrast: str, max_batch: int
) -> tuple[Tensor, Tensor]:
    """Scores and predicted classes of many images in forward passes of at most `max_batch` images."""
    scores, preds = [], []
    with torch.no_grad():
        for start in range(0, images.shape[0], max_batch):
            stop = start + max_batch
            logits = model(images[start:stop])
            scores.append(pair_scalar(logits, source[start:stop], target[start:stop], contrast))
            preds.append(logits.argmax(1))
    return torch.cat(scores), torch.cat(preds)


def pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each row of a with the same row of b (NaN where either row is constant)."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denom = a.norm(dim=-1) * b.norm(dim=-1)
    corr = (a * b).sum(-1) / denom
    return torch.where(denom > 0, corr, torch.full_like(corr, float("nan")))


def average_ranks(x: Tensor) -> Tensor:
    """Ranks (1..F) of each row, ties getting their average rank, as scipy.stats.rankdata does."""
    n, f = x.shape
    values, order = x.sort(dim=1, stable=True)
    new_group = torch.ones_like(values, dtype=torch.bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = new_group.long().cumsum(1) - 1 + torch.arange(n, device=x.device).view(-1, 1) * f
    positions = torch.arange(1, f + 1, device=x.device, dtype=x.dtype).expand(n, f).reshape(-1)
    mean_rank = torch.zeros(n * f, device=x.device, dtype=x.dtype).scatter_reduce(
        0, group.reshape(-1), positions, reduce="mean", include_self=False
    )
    ranks = torch.empty_like(values)
    ranks.scatter_(1, order, mean_rank[group].view(n, f))
    return ranks


def spearman_rows(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each row pair (Pearson of average ranks)."""
    return pearson_rows(average_ranks(a.double()), average_ranks(b.double())).to(a.dtype)
