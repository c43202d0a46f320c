"""Localisation against a known ground truth: does the attribution sit on the pixels that decide?

Needs a per-image mask of the evidence the classifier relies on (e.g. `dataset=decoy_mnist`, whose swatch
encodes the class). Four measures, one value per example, NaN where the mask is empty (or, for the ROC AUC,
covers every pixel):

- relevance mass accuracy (Arras et al. 2022, CLEVR-XAI): the share of the relevance inside the mask;
- relevance rank accuracy (ibid.): the share of the K most relevant pixels inside the mask, K = |mask|;
- pointing game (Zhang et al. 2018): 1 if the most relevant pixel is inside the mask, else 0;
- attribution-localisation AUC: ROC AUC of the attribution as a detector of mask pixels (Fawcett 2006).

Sign convention. Attributions explain the pair score s = logit_c - logit_t (one-vs-one): a positive value
is evidence for the source c over the target t, a negative one evidence for t. The decoy swatch's shade is
evidence for c, so a faithful contrastive explanation puts *positive* relevance on it. `relevance` picks
what counts: "positive" (default, Arras et al.: only evidence for c; negative values count as 0),
"absolute" (|a|: evidence either way, for methods whose sign is meaningless) or "signed" (raw values; the
mass accuracy may then leave [0, 1]). Pixels are features: channels are summed first, as in every metric.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.metrics.scoring import average_ranks, spatial_attributions

RELEVANCE = ("positive", "absolute", "signed")


def check_masks(masks: Tensor, n: int, h: int, w: int) -> Tensor:
    """(N, H*W) bool masks from (N, H, W) or (N, 1, H, W) masks of the same images."""
    m = masks
    if isinstance(m, Tensor) and m.dim() == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if not isinstance(m, Tensor) or m.dim() != 3 or tuple(m.shape) != (n, h, w):
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(
            f"ground-truth masks of shape {shape} do not match {n} images of {h}x{w}; "
            f"pass (N, H, W) or (N, 1, H, W) masks, True on the deciding pixels"
        )
    return m.reshape(n, h * w).bool()


def relevance(attributions: Tensor, mode: str) -> Tensor:
    """(N, F) attributions as the chosen kind of relevance."""
    if mode == "positive":
        return attributions.clamp_min(0.0)
    if mode == "absolute":
        return attributions.abs()
    return attributions


def mass_accuracy(a: Tensor, mask: Tensor) -> Tensor:
    """(N,) sum of a inside the mask / sum of a; NaN for an empty mask or zero total relevance."""
    total = a.sum(1)
    inside = (a * mask).sum(1)
    ok = (mask.sum(1) > 0) & (total != 0)
    return torch.where(ok, inside / torch.where(ok, total, torch.ones_like(total)), torch.nan)


def rank_accuracy(a: Tensor, mask: Tensor) -> Tensor:
    """(N,) share of the K = |mask| highest-relevance pixels that lie in the mask.

    Pixels tied with the K-th value share the remaining places: each tied mask pixel gets the fraction
    (places left / tied pixels), the expected hit count under random tie-breaking. Without ties this is
    the plain top-K count (Quantus's implementation, which breaks ties by argsort order)."""
    k = mask.sum(1)
    values = a.sort(1, descending=True).values
    kth = values.gather(1, (k - 1).clamp_min(0).view(-1, 1))  # (N, 1) the K-th largest value
    above = a > kth
    tied = a == kth
    places = (k - above.sum(1)).to(a.dtype)
    tied_in = (tied & mask).sum(1).to(a.dtype)
    hits = (above & mask).sum(1).to(a.dtype) + places * tied_in / tied.sum(1).clamp_min(1).to(a.dtype)
    return torch.where(k > 0, hits / k.clamp_min(1).to(a.dtype), torch.nan)


def pointing_game(a: Tensor, mask: Tensor) -> Tensor:
    """(N,) 1.0 if a pixel with the maximal relevance lies in the mask (ties: any of them), else 0."""
    top = a == a.max(1, keepdim=True).values
    hit = (top & mask).any(1).to(a.dtype)
    return torch.where(mask.any(1), hit, torch.nan)


def localisation_auc(a: Tensor, mask: Tensor) -> Tensor:
    """(N,) ROC AUC of a for the mask pixels (Mann-Whitney U, ties counted one half, as sklearn's)."""
    ranks = average_ranks(a.double())
    pos = mask.sum(1).double()
    neg = mask.shape[1] - pos
    u = (ranks * mask).sum(1) - pos * (pos + 1) / 2
    ok = (pos > 0) & (neg > 0)
    auc = u / torch.where(ok, pos * neg, torch.ones_like(pos))
    return torch.where(ok, auc, torch.nan).to(a.dtype)


MEASURES = {
    "relevance_mass_accuracy": mass_accuracy,
    "relevance_rank_accuracy": rank_accuracy,
    "pointing_game": pointing_game,
    "localisation_auc": localisation_auc,
}


class Localisation(Metric):
    """Localisation measures of attributions against ground-truth masks; higher is better for all.

    update(attributions, masks): attributions (N, C|1, H, W) or (N, H, W); masks (N, H, W) or
    (N, 1, H, W), True on the pixels that carry the deciding evidence.
    compute() -> one (N,) tensor per measure in `measures` (default: all four of `MEASURES`).
    """

    is_differentiable = False
    higher_is_better = True
    output_directions = {name: True for name in MEASURES}
    full_state_update = False
    default_measures: tuple[str, ...] = tuple(MEASURES)

    def __init__(
        self, relevance: str = "positive", measures: tuple[str, ...] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if relevance not in RELEVANCE:
            raise ValueError(f"unknown relevance {relevance!r}; choose one of {', '.join(RELEVANCE)}")
        self.measures = tuple(measures) if measures is not None else self.default_measures
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown or not self.measures:
            raise ValueError(f"unknown localisation measures {unknown}; choose from {', '.join(MEASURES)}")
        self.relevance = relevance
        for name in self.measures:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, attributions: Tensor, masks: Tensor) -> None:
        a = attributions.detach()
        if a.dim() == 3:
            a = a.unsqueeze(1)
        if a.dim() != 4:
            raise ValueError(f"attributions must be (N, C, H, W) or (N, H, W), got {tuple(a.shape)}")
        n, _, h, w = a.shape
        mask = check_masks(masks.to(a.device), n, h, w)
        rel = relevance(spatial_attributions(a.float(), a.float()), self.relevance)
        for name in self.measures:
            getattr(self, name).append(MEASURES[name](rel, mask))

    def compute(self) -> dict[str, Tensor]:
        return {name: dim_zero_cat(getattr(self, name)) for name in self.measures}


class RelevanceMassAccuracy(Localisation):
    """Share of the relevance inside the mask (Arras et al. 2022)."""

    output_directions = {"relevance_mass_accuracy": True}
    default_measures = ("relevance_mass_accuracy",)


class RelevanceRankAccuracy(Localisation):
    """Share of the |mask| most relevant pixels inside the mask (Arras et al. 2022)."""

    output_directions = {"relevance_rank_accuracy": True}
    default_measures = ("relevance_rank_accuracy",)


class PointingGame(Localisation):
    """1 if the most relevant pixel is inside the mask (Zhang et al. 2018)."""

    output_directions = {"pointing_game": True}
    default_measures = ("pointing_game",)


class LocalisationAUC(Localisation):
    """ROC AUC of the attribution as a detector of mask pixels."""

    output_directions = {"localisation_auc": True}
    default_measures = ("localisation_auc",)
