"""Counterfactual quality of generator baselines (GANMEX, StarGAN, autoencoder, MDTS...): is the baseline a
valid, close, sparse and realistic member of the target class?

Realism (FID, KID) is measured with torchmetrics in a classifier's penultimate feature space
`features(x)`, because Inception weights cannot be downloaded here: the independent oracle g's when one
is given (f's own features would reward images that merely fool f), else the explained model f's. A judge
without `features` (an imported classifier without `classifier.feature_layer`) gets NaN FID/KID.
Numbers are comparable between baselines judged by one network, not with published Inception FIDs.
With an oracle, `oracle_validity` asks whether g, too, sees the target class in x'.
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
    """Validity, proximity, sparsity of the change, realism and distance to the training set.

    update(model, inputs, counterfactuals, source, target, real=None): `real` are real images for the FID/KID
    reference distribution (default: the inputs themselves). Per example: validity (1 if model predicts
    t), oracle_validity (1 if the oracle predicts t; only with `oracle`), l1 and l2 (norms of
    counterfactual - x over all pixels), l1_per_pixel (l1 / number of pixel values), changed_fraction
    (share of pixel values changed by more than `change_tolerance`, default 0.1 = 10% of the [0, 1]
    range: above interpolation noise, below any visible stroke change), nearest_train_l2 (only if
    `train_images` was given). Per set: fid, kid_mean, kid_std in the oracle's feature space (else the
    model's; KID needs >= 2 samples per side; its subset size shrinks to the sample count if needed).
    compute() -> dict name -> (N,) tensor or scalar; `output_directions` gives each output's direction.
    """

    is_differentiable = False
    higher_is_better = None  # several outputs: each one's direction is in output_directions
    output_directions: dict[str, bool] = {
        "validity": True,
        "oracle_validity": True,
        "l1": False,
        "l2": False,
        "l1_per_pixel": False,
        "changed_fraction": False,
        "nearest_train_l2": False,
        "fid": False,
        "kid_mean": False,
        "kid_std": False,
    }
    full_state_update = False

    def __init__(
        self,
        train_images: Tensor | None = None,
        oracle: nn.Module | None = None,
        change_tolerance: float = 0.1,
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
        for name in (
            "validity",
            "oracle_validity",
            "l1",
            "l2",
            "l1_per_pixel",
            "changed_fraction",
            "nearest_train_l2",
            "real_features",
            "fake_features",
        ):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        model: nn.Module,
        inputs: Tensor,
        counterfactuals: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        real: Tensor | None = None,
    ) -> None:
        x = check_images(inputs)
        cf = check_images(counterfactuals, "counterfactuals")
        if cf.shape != x.shape:
            raise ValueError(
                f"counterfactuals {tuple(cf.shape)} must have the inputs' shape {tuple(x.shape)}"
            )
        n = x.shape[0]
        as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        real = x if real is None else check_images(real, "real")
        oracle = self.oracle
        judge = model if oracle is None else oracle
        if not hasattr(judge, "features") and not self._said_no_features:
            log.info(
                "FID/KID skipped: %s exposes no penultimate features (an imported classifier: set "
                "classifier.feature_layer, or train an oracle)",
                type(judge).__name__,
            )
            self._said_no_features = True
        with torch.no_grad():
            self.validity.append((model(cf).argmax(1) == target).to(x.dtype))
            if oracle is not None:
                self.oracle_validity.append((oracle(cf).argmax(1) == target).to(x.dtype))
            if hasattr(judge, "features"):
                self.real_features.append(judge.features(real).flatten(1).double())
                self.fake_features.append(judge.features(cf).flatten(1).double())
        delta = (cf - x).flatten(1)
        self.l1_per_pixel.append(delta.abs().mean(1))
        self.l1.append(delta.abs().sum(1))
        self.l2.append(delta.norm(dim=1))
        self.changed_fraction.append((delta.abs() > self.change_tolerance).to(x.dtype).mean(1))
        if self.train_images is not None:
            self.nearest_train_l2.append(nearest_distance(cf, self.train_images, self.nn_chunk))

    @property
    def oracle(self) -> nn.Module | None:
        """The independent judge g (frozen, eval mode), or None."""
        return self._oracle[0]

    def _realism(self, real: Tensor | None, fake: Tensor | None) -> dict[str, Tensor]:
        if real is None or fake is None or min(real.shape[0], fake.shape[0]) < 2:
            nan = torch.tensor(float("nan"))
            return {"fid": nan, "kid_mean": nan, "kid_std": nan}
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
        return {"fid": fid.compute().float(), "kid_mean": kid_mean.float(), "kid_std": kid_std.float()}

    def compute(self) -> dict[str, Tensor]:
        out = {
            name: dim_zero_cat(getattr(self, name))
            for name in ("validity", "l1", "l2", "l1_per_pixel", "changed_fraction")
        }
        if self.oracle is not None:
            out["oracle_validity"] = dim_zero_cat(self.oracle_validity)
        if self.train_images is not None:
            out["nearest_train_l2"] = dim_zero_cat(self.nearest_train_l2)
        features = [dim_zero_cat(f) if len(f) else None for f in (self.real_features, self.fake_features)]
        out.update(self._realism(*features))
        return out
