"""Attribution sparsity as the Gini index of |a| (Chalasani et al. 2020): 0 when every pixel gets the same
share of the attribution, near 1 when one pixel gets all of it. Concise explanations score higher.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def gini(attributions: Tensor, eps: float = 1e-7) -> Tensor:
    """(N,) Gini index of each example's flattened |attributions|; eps keeps all-zero maps defined (-> 0)."""
    a = attributions.detach().flatten(1).abs().double() + eps
    a, _ = a.sort(dim=1)
    f = a.shape[1]
    k = torch.arange(1, f + 1, device=a.device, dtype=a.dtype)
    return (((2 * k - f - 1) * a).sum(1) / (f * a.sum(1))).to(attributions.dtype)


class Gini(Metric):
    """update(attributions); compute() -> {"gini": (N,)}. Higher = sparser."""

    is_differentiable = False
    higher_is_better = True
    output_directions = {"gini": True}
    full_state_update = False

    def __init__(self, eps: float = 1e-7, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps = float(eps)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, attributions: Tensor) -> None:
        if attributions.dim() < 2:
            raise ValueError(f"attributions must be batched (N, ...), got shape {tuple(attributions.shape)}")
        self.values.append(gini(attributions, self.eps))

    def compute(self) -> dict[str, Tensor]:
        return {"gini": dim_zero_cat(self.values)}
