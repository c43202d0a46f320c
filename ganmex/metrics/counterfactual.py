"""Counterfactual quality of generator baselines (GANMEX, StarGAN, autoencoder, MDTS...): is the baseline a
valid, close, sparse and realistic member of the target class?

Realism (FID, KID) is measured with torchmetrics in a classifier's penultimate feature space
`features(x)`, because Inception weights cannot be downloaded here: the independent oracle g's when one
is given (f's own features would reward images that merely fool f), else the explained model f's. A judge
without `features` (an imported classifier without `classifier.feature_layer`) gets NaN FID/KID.
Numbers are comparable between baselines judged by one network, not with published Inception FIDs.
With an oracle, `oracle_validity` asks whether g, too, sees the target class in x'.

`counterfactual_quality` is the one per-pair computation: GAN validation (`val/<name>`), the evaluate
stage's records and `evaluate.py mode=gan_quality` all call it, so each quantity has one name everywhere
(`COUNTERFACTUAL_DIRECTIONS`).
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from ganmex.metrics.scoring import check_images
from ganmex.tensors import as_labels

log = logging.getLogger(__name__)

# every quantity of counterfactual quality, by its one name (record, log key and compute() key), with
# its direction
COUNTERFACTUAL_DIRECTIONS: dict[str, bool] = {
    "validity": True,  # argmax f(x') = t
    "oracle_validity": True,  # argmax g(x') = t, the independent oracle g
    "proximity_l1": False,  # mean |x' - x| per pixel value, in [0, 1]
    "proximity_l2": False,  # ||x' - x||_2 over all pixel values
    "change_sparsity": False,  # share of pixel values moved by more than the tolerance
    "edit_in_mask": True,  # share of sum |x' - x| inside the ground-truth mask (datasets with masks)
    "nn_distance": False,  # L2 pixel distance from x' to its nearest training image
    "fid": False,  # Frechet distance of x' to the real images, in g's (else f's) penultimate features
    "kid": False,  # kernel inception distance, same features (mean over subsets)
    "kid_std": False,
}
# pixel values moved by more than this share of the [0, 1] range count as changed: above interpolation
# noise, below any visible stroke change
DEFAULT_CHANGE_TOLERANCE = 0.1


@torch.no_grad()
def counterfactual_quality(
    model: nn.Module,
    inputs: Tensor,
    counterfactuals: Tensor,
    target: Tensor,
    oracle: nn.Module | None = None,
    masks: Tensor | None = None,
    change_tolerance: float = DEFAULT_CHANGE_TOLERANCE,
) -> dict[str, Tensor]:
    """Per-pair quality of counterfactuals x' of inputs x for target classes t: (N,) tensors named as in
    `COUNTERFACTUAL_DIRECTIONS` (oracle_validity with an oracle, edit_in_mask with (N, H, W) masks; an
    x' equal to x has no edit and gets NaN there)."""
    x = check_images(inputs)
    cf = check_images(counterfactuals, "counterfactuals")
    if cf.shape != x.shape:
        raise ValueError(f"counterfactuals {tuple(cf.shape)} must have the inputs' shape {tuple(x.shape)}")
    target = as_labels(target, x.shape[0], x.device, "target")
    delta = (cf - x).flatten(1)
    out = {"validity": (model(cf).argmax(1) == target).to(x.dtype)}
    if oracle is not None:
        out["oracle_validity"] = (oracle(cf).argmax(1) == target).to(x.dtype)
    out["proximity_l1"] = delta.abs().mean(1)
    out["proximity_l2"] = delta.norm(dim=1)
    out["change_sparsity"] = (delta.abs() > change_tolerance).to(x.dtype).mean(1)
    if masks is not None:
        n, c, h, w = x.shape
        inside = masks.to(x.device).reshape(n, 1, h, w).expand(n, c, h, w).flatten(1).to(x.dtype)
        edit = delta.abs()
        total = edit.sum(1)
        share = (edit * inside).sum(1) / total.clamp_min(torch.finfo(x.dtype).tiny)
        out["edit_in_mask"] = torch.where(total > 0, share, torch.full_like(share, float("nan")))
    return out


class _Precomputed(nn.Module):
    """Identity 'feature extractor' so torchmetrics' FID/KID take features we already computed."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def nearest_distance(images: Tensor, reference: Tensor, chunk: int) -> Tensor:
    """(N,) L2 pixel distance from each image to its nearest image in `reference` (chunked cdist)."""
    flat = images.flatten(1)
    ref = reference.to(flat).flatten(1)
    if ref.shape[1] != flat.shape[1]:
        raise ValueError(
            f"training images {tuple(reference.shape[1:])} differ from images {tuple(images.shape[1:])}"
        )
    best = torch.full((flat.shape[0],), float("inf"), device=flat.device, dtype=flat.dtype)
    for start in range(0, ref.shape[0], chunk):
        best = torch.minimum(best, torch.cdist(flat, ref[start : start + chunk]).min(1).values)
    return best


class CounterfactualQuality(Metric):
    """Counterfactual quality (`counterfactual_quality`) accumulated over batches, plus the per-set realism.

    update(model, inputs, counterfactuals, source, target, real=None, masks=None): `real` are real images
    for the FID/KID reference distribution (default: the inputs themselves); `masks` (N, H, W) ground-truth
    masks add `edit_in_mask`. `nn_distance` needs `train_images`; `oracle_validity` and the oracle's
    feature space need `oracle`. compute() -> dict name -> (N,) tensor (fid, kid, kid_std: scalars), named
    as in `COUNTERFACTUAL_DIRECTIONS`; KID needs >= 2 samples per side and its subset size shrinks to the
    sample count if needed.
    """

    is_differentiable = False
    higher_is_better = None  # several outputs: each one's direction is in output_directions
    output_directions: dict[str, bool] = COUNTERFACTUAL_DIRECTIONS
    full_state_update = False
    PER_PAIR = (
        "validity",
        "oracle_validity",
        "proximity_l1",
        "proximity_l2",
        "change_sparsity",
        "edit_in_mask",
    )

    def __init__(
        self,
        train_images: Tensor | None = None,
        oracle: nn.Module | None = None,
        change_tolerance: float = DEFAULT_CHANGE_TOLERANCE,
        kid_subsets: int = 50,
        kid_subset_size: int = 500,
        seed: int = 0,
        nn_chunk: int = 2048,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= change_tolerance < 1:
            raise ValueError(f"change_tolerance must be in [0, 1), got {change_tolerance}")
        self.change_tolerance = float(change_tolerance)
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self.seed = int(seed)
        self.nn_chunk = int(nn_chunk)
        self._said_no_features = False
        self._oracle = (
            None if oracle is None else oracle.eval(),
        )  # a tuple: the judge is no child module (not in state_dict, not moved)
        self.register_buffer(
            "train_images",
            None if train_images is None else check_images(train_images, "train_images"),
            persistent=False,
        )
        for name in (*self.PER_PAIR, "nn_distance", "real_features", "fake_features"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        model: nn.Module,
        inputs: Tensor,
        counterfactuals: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        real: Tensor | None = None,
        masks: Tensor | None = None,
    ) -> None:
        n = check_images(inputs).shape[0]
        as_labels(source, n, inputs.device, "source")
        per_pair = counterfactual_quality(
            model, inputs, counterfactuals, target, self.oracle, masks, self.change_tolerance
        )
        for name, values in per_pair.items():
            getattr(self, name).append(values)
        real = inputs if real is None else check_images(real, "real")
        judge = model if self.oracle is None else self.oracle
        if not hasattr(judge, "features"):
            if not self._said_no_features:
                log.info(
                    "FID/KID skipped: %s exposes no penultimate features (an imported classifier: set "
                    "classifier.feature_layer, or train an oracle)",
                    type(judge).__name__,
                )
                self._said_no_features = True
        else:
            with torch.no_grad():
                self.real_features.append(judge.features(real).flatten(1).double())
                self.fake_features.append(judge.features(counterfactuals).flatten(1).double())
        if self.train_images is not None:
            self.nn_distance.append(nearest_distance(counterfactuals, self.train_images, self.nn_chunk))

    @property
    def oracle(self) -> nn.Module | None:
        """The independent judge g (frozen, eval mode), or None."""
        return self._oracle[0]

    def _realism(self, real: Tensor | None, fake: Tensor | None) -> dict[str, Tensor]:
        if real is None or fake is None or min(real.shape[0], fake.shape[0]) < 2:
            nan = torch.tensor(float("nan"))
            return {"fid": nan, "kid": nan, "kid_std": nan}
        dim = real.shape[1]
        fid = FrechetInceptionDistance(feature=_Precomputed(dim)).to(real.device)
        fid.update(real, real=True)
        fid.update(fake, real=False)
        size = min(self.kid_subset_size, real.shape[0], fake.shape[0])
        with warnings.catch_warnings():  # its "saves all features" notice: we pass features, not images
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(
                feature=_Precomputed(dim), subsets=self.kid_subsets, subset_size=size
            ).to(real.device)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            kid_mean, kid_std = kid.compute()
        return {"fid": fid.compute().float(), "kid": kid_mean.float(), "kid_std": kid_std.float()}

    def compute(self) -> dict[str, Tensor]:
        out = {
            name: dim_zero_cat(getattr(self, name))
            for name in (*self.PER_PAIR, "nn_distance")
            if len(getattr(self, name))
        }
        features = [dim_zero_cat(f) if len(f) else None for f in (self.real_features, self.fake_features)]
        out.update(self._realism(*features))
        return out
