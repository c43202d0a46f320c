"""Perturbation curves: MoRF deletion and insertion (Samek et al. 2017; Petsiuk et al. 2018).

Features (pixels or square patches) are ranked by attribution; step by step they are "removed", i.e.
replaced by a reference: the per-example baseline that produced the attribution (counterfactual deletion: how
fast logit_c - logit_t falls and f flips to t) or a fixed reference shared by all baselines (zero, blur,
ROAD's noisy linear imputation, see `ganmex.metrics.references`).

- deletion: start at x, remove features in `order` (morf: most relevant first).
- insertion: start at the reference, restore x's features in `order`. Its states are the LeRF deletion states
  read from the other end (inserting the k most relevant = removing the F-k least relevant).

All perturbed images of a batch are built at once and scored in large forward passes (many steps per
forward); a state identical to the previous step's (removing pixels that already equal the reference, as
dark MNIST pixels do under a black reference) reuses its score instead of a forward pass. Both together make
this several times faster than a per-step loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.errors import check_choice
from ganmex.explain.target import check_contrast
from ganmex.metrics.scoring import (
    Model,
    batched_scores,
    check_images,
    reference_like,
    spatial_attributions,
)
from ganmex.tensors import as_labels

MODES = ("deletion", "insertion")
ORDERS = ("morf", "lerf")
FEATURES = ("pixel", "patch")

Reference = Tensor | Callable[[Tensor, Tensor, Tensor], Tensor]


def feature_map(h: int, w: int, feature: str, patch_size: int, device: torch.device) -> tuple[Tensor, int]:
    """(H*W,) feature id of each pixel and the number of features. Patches are non-overlapping squares on a
    grid centred on the image (as Quantus pads), so when H or W is not a multiple of the patch size the border
    patches on both sides are cut short."""
    if feature == "pixel":
        return torch.arange(h * w, device=device), h * w
    rows, cols = math.ceil(h / patch_size), math.ceil(w / patch_size)
    off_h, off_w = (rows * patch_size - h) // 2, (cols * patch_size - w) // 2
    r = (torch.arange(h, device=device) + off_h) // patch_size
    c = (torch.arange(w, device=device) + off_w) // patch_size
    return (r.view(-1, 1) * cols + c.view(1, -1)).reshape(-1), rows * cols


def removal_counts(n_features: int, num_steps: int | None, features_per_step: int | None) -> list[int]:
    """Number of removed features at each point of the curve, from 0 to all of them."""
    if (num_steps is None) == (features_per_step is None):
        raise ValueError(
            f"set exactly one of num_steps ({num_steps}) and features_per_step ({features_per_step}) "
            f"for a perturbation curve"
        )
    if features_per_step is not None:
        if features_per_step < 1:
            raise ValueError(f"features_per_step must be >= 1, got {features_per_step}")
        return [
            min(j * features_per_step, n_features)
            for j in range(math.ceil(n_features / features_per_step) + 1)
        ]
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return sorted({round(j * n_features / num_steps) for j in range(num_steps + 1)})


class PerturbationCurve(Metric):
    """Deletion / insertion curve of the scored output, with AUC, AOPC and the fraction of features to flip.

    update(model, inputs, attributions, source, target, reference):
        model: [0, 1] pixels -> logits; inputs (N, C, H, W); attributions (N, C|1, H, W) or (N, H, W), summed
        over channels per pixel; source/target: (N,) classes or ints; reference: a tensor broadcastable to
        inputs, a callable `(x, source, target) -> Tensor`, or an object with `impute(x, removed)` (ROAD).
        The model must be deterministic (eval mode): unchanged states reuse earlier scores.
    compute() -> dict of per-example tensors (the report takes mean, std, CI and n):
        curve (N, L+1): scores after each step; fractions (N, L+1): removed fraction (deletion) or restored
        fraction (insertion); auc: trapezoid of the raw curve over the fraction axis; auc_normalised: the
        same for (curve - f(reference)) / (f(x) - f(reference)), NaN where |f(x) - f(reference)| <
        min_score_gap (deletion: 1 -> 0, lower is more faithful; insertion: 0 -> 1, higher is more faithful);
        aopc: mean over the steps of the score drop from the start (deletion) or rise (insertion);
        flip_fraction: first fraction at which the prediction is t (deletion) or back to c (insertion), NaN
        if it never is. With `exact_flip` (default) it is found at single-feature resolution: the coarse
        curve brackets the first flipped step, then a bisection over the feature count inside that bracket
        (about log2(features per step) more batched forward passes) finds the first k with the goal class
        after k-1 without it; so it is k / F, not a multiple of 1/num_steps. (If the prediction flips and
        flips back inside one bracket, the bisection finds one of the flips there.)

    `output_directions` gives each output's direction in deletion mode; use `InsertionCurve` for insertion,
    whose directions differ (torchmetrics makes the attribute a class constant).
    """

    is_differentiable = False
    # deletion (the default mode): a faithful ranking makes the score fall fast and flip early
    output_directions = {"auc": False, "auc_normalised": False, "aopc": True, "flip_fraction": False}
    full_state_update = False

    def __init__(
        self,
        mode: str = "deletion",
        order: str = "morf",
        feature: str = "pixel",
        patch_size: int = 4,
        num_steps: int | None = 20,
        features_per_step: int | None = None,
        contrast: str = "one_vs_one",
        max_batch: int = 1024,
        min_score_gap: float = 1e-6,
        skip_unchanged: bool = True,
        exact_flip: bool = True,
        forward_batch: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.skip_unchanged = bool(skip_unchanged)
        self.exact_flip = bool(exact_flip)
        self.mode = check_choice("perturbation mode", mode, MODES)
        self.order = check_choice("feature order", order, ORDERS)
        self.feature = check_choice("feature type", feature, FEATURES)
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if forward_batch is not None and forward_batch < 1:
            raise ValueError(f"forward_batch must be >= 1 or null (max_batch), got {forward_batch}")
        removal_counts(1, num_steps, features_per_step)  # validate now, not at the first update
        self.patch_size = int(patch_size)
        self.num_steps = num_steps
        self.features_per_step = features_per_step
        self.contrast = check_contrast(contrast)
        self.max_batch = int(max_batch)
        # images per forward pass; max_batch states are built (and ROAD-imputed, one noise draw) at once
        self.forward_batch = int(forward_batch or max_batch)
        self.min_score_gap = float(min_score_gap)
        self.add_state("curves", default=[], dist_reduce_fx="cat")
        self.add_state("fractions", default=[], dist_reduce_fx="cat")
        self.add_state("flip_fractions", default=[], dist_reduce_fx="cat")

    def removed_masks(self, attributions: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """(L+1, N, H*W) bool masks of removed pixels at each step, and the (L+1,) feature fractions."""
        rank_pix, n_features = self.feature_ranks(attributions, inputs)
        counts = removal_counts(n_features, self.num_steps, self.features_per_step)
        k = torch.tensor(counts, device=inputs.device).view(-1, 1, 1)
        return self.state(rank_pix.unsqueeze(0), k), k.view(-1).to(inputs.dtype) / n_features

    def state(self, rank_pix: Tensor, k: Tensor) -> Tensor:
        """Removed pixels after k steps of features: the first k in the order (deletion) or all but them
        (insertion restores the first k)."""
        taken = rank_pix < k
        return taken if self.mode == "deletion" else ~taken

    def feature_ranks(self, attributions: Tensor, inputs: Tensor) -> tuple[Tensor, int]:
        """(N, H*W) position of each pixel's feature in the removal order, and the number of features."""
        n, _, h, w = inputs.shape
        a_pix = spatial_attributions(attributions, inputs)
        ids, n_features = feature_map(h, w, self.feature, self.patch_size, inputs.device)
        if self.feature == "patch":
            a_feat = a_pix.new_zeros(n, n_features).index_add_(1, ids, a_pix)
        else:
            a_feat = a_pix
        order = torch.argsort(a_feat, dim=1, descending=self.order == "morf", stable=True)
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(n_features, device=inputs.device).expand(n, -1)
        )
        return rank[:, ids], n_features

    def changed_steps(self, removed: Tensor, x: Tensor, ref: Tensor | None) -> Tensor:
        """(L+1, N) True where the perturbed image differs from the previous step's, so it needs a forward
        pass; the others (e.g. dark MNIST pixels replaced by a black reference) reuse the previous score.
        With an imputer every state may differ, and `skip_unchanged=False` scores every state."""
        need = torch.ones(removed.shape[:2], dtype=torch.bool, device=removed.device)
        if ref is None or not self.skip_unchanged:
            return need
        differs = (x != ref).any(1).flatten(1)  # (N, H*W): pixels whose removal changes the image
        need[1:] = ((removed[1:] ^ removed[:-1]) & differs.unsqueeze(0)).any(-1)
        return need

    def update(
        self,
        model: Model,
        inputs: Tensor,
        attributions: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        reference: Reference,
    ) -> None:
        x = check_images(inputs)
        n, c, h, w = x.shape
        source = as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        rank_pix, n_features = self.feature_ranks(attributions, x)
        counts = removal_counts(n_features, self.num_steps, self.features_per_step)
        k_steps = torch.tensor(counts, device=x.device)
        removed = self.state(rank_pix.unsqueeze(0), k_steps.view(-1, 1, 1))
        fractions = k_steps.to(x.dtype) / n_features
        steps = removed.shape[0]
        imputer = getattr(reference, "impute", None)
        ref = None
        if imputer is None:
            ref = reference_like(reference(x, source, target) if callable(reference) else reference, x)

        def perturbed(mask: Tensor, b: Tensor) -> Tensor:
            mask_img = mask.view(-1, 1, h, w)
            return torch.where(mask_img, ref[b], x[b]) if imputer is None else imputer(x[b], mask_img)

        need = self.changed_steps(removed, x, ref)  # (L+1, N): states that differ from the previous step
        steps_idx, ex_idx = need.nonzero(as_tuple=True)
        scores = x.new_zeros(steps, n)
        preds = torch.zeros(steps, n, dtype=torch.long, device=x.device)
        for start in range(0, steps_idx.numel(), self.max_batch):
            j, b = steps_idx[start : start + self.max_batch], ex_idx[start : start + self.max_batch]
            images = perturbed(removed[j, b], b)
            sc, pr = batched_scores(model, images, source[b], target[b], self.contrast, self.forward_batch)
            scores[j, b] = sc.to(scores.dtype)
            preds[j, b] = pr
        # an unchanged state has the score of the last changed one
        positions = torch.arange(steps, device=x.device).view(-1, 1).expand(steps, n)
        last = torch.where(need, positions, torch.zeros_like(positions)).cummax(0).values
        curve = scores.gather(0, last).T  # (N, L+1)
        pred = preds.gather(0, last).T
        goal = target if self.mode == "deletion" else source
        flipped = pred == goal.view(-1, 1)
        first = torch.where(flipped.any(1), flipped.float().argmax(1), torch.full_like(source, -1))
        k_flip = k_steps[first.clamp_min(0)]
        if self.exact_flip:
            lo = torch.where(first > 0, k_steps[(first - 1).clamp_min(0)], k_flip)
            k_flip = self.bisect_flip(model, perturbed, rank_pix, lo, k_flip, source, target, goal)
        flip = k_flip.to(x.dtype) / n_features
        flip = torch.where(first >= 0, flip, torch.full_like(flip, float("nan")))
        self.curves.append(curve)
        self.fractions.append(fractions.expand(n, -1))
        self.flip_fractions.append(flip)

    def bisect_flip(
        self,
        model: Model,
        perturbed: Callable[[Tensor, Tensor], Tensor],
        rank_pix: Tensor,
        lo: Tensor,
        hi: Tensor,
        source: Tensor,
        target: Tensor,
        goal: Tensor,
    ) -> Tensor:
        """(N,) first feature count k in (lo, hi] whose state predicts `goal`, given that hi does and lo
        does not: halve every open bracket at once, one batched forward pass per halving."""
        lo, hi = lo.clone(), hi.clone()
        while True:
            (b,) = (hi - lo > 1).nonzero(as_tuple=True)
            if b.numel() == 0:
                return hi
            mid = (lo[b] + hi[b]) // 2
            mask = self.state(rank_pix[b], mid.view(-1, 1))
            _, pred = batched_scores(
                model, perturbed(mask, b), source[b], target[b], self.contrast, self.forward_batch
            )
            hit = pred == goal[b]
            hi[b] = torch.where(hit, mid, hi[b])
            lo[b] = torch.where(hit, lo[b], mid)

    def compute(self) -> dict[str, Tensor]:
        curve = dim_zero_cat(self.curves)
        frac = dim_zero_cat(self.fractions)
        if self.mode == "deletion":
            f_x, f_ref = curve[:, 0], curve[:, -1]
            aopc = (curve[:, :1] - curve).mean(1)
        else:
            f_x, f_ref = curve[:, -1], curve[:, 0]
            aopc = (curve - curve[:, :1]).mean(1)
        gap = f_x - f_ref
        ok = gap.abs() >= self.min_score_gap
        normalised = (curve - f_ref.unsqueeze(1)) / torch.where(ok, gap, torch.ones_like(gap)).unsqueeze(1)
        auc_norm = torch.trapezoid(normalised, frac, dim=1)
        return {
            "curve": curve,
            "fractions": frac,
            "auc": torch.trapezoid(curve, frac, dim=1),
            "auc_normalised": torch.where(ok, auc_norm, torch.full_like(auc_norm, float("nan"))),
            "aopc": aopc,
            "flip_fraction": dim_zero_cat(self.flip_fractions),
        }


class InsertionCurve(PerturbationCurve):
    """A `PerturbationCurve` in insertion mode, with insertion's directions."""

    # a faithful ranking makes the score rise fast (high AUC) and return to c early
    output_directions = {"auc": True, "auc_normalised": True, "aopc": True, "flip_fraction": False}

    def __init__(self, mode: str = "insertion", **kwargs) -> None:
        if mode != "insertion":
            raise ValueError(f"InsertionCurve has mode insertion, got mode={mode!r}; use PerturbationCurve")
        super().__init__(mode=mode, **kwargs)
