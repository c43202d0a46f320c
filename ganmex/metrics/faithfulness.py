"""Random-subset faithfulness: faithfulness correlation (Bhatt et al. 2020) and Sensitivity-n (Ancona et al.
2018). Both replace a random subset S of pixels by the reference and correlate the sum of the attributions
over S with the drop of the scored output; Sensitivity-n does it for several subset sizes n.

Subsets come from a seeded torch.Generator that `reset()` re-seeds, so every method x baseline is scored on
the same subsets of the same images (common random numbers); callers may also pass the subsets explicitly.
With `example_ids` (global example indices) each example draws from its own generator seeded by
(seed, id) instead, so its subsets do not depend on its batch, its position or the DDP rank scoring it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import partial

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.explain.target import check_contrast
from ganmex.metrics.scoring import (
    Model,
    batched_scores,
    check_images,
    pearson_rows,
    reference_like,
    spatial_attributions,
)
from ganmex.metrics.shared import SharedWork, share
from ganmex.tensors import as_labels


def random_subsets(n: int, runs: int, size: int, n_features: int, generator: torch.Generator) -> Tensor:
    """(n, runs, size) pixel indices, each row a uniform random subset without replacement."""
    keys = torch.rand(n, runs, n_features, generator=generator, device=generator.device)
    return keys.argsort(-1)[..., :size]


EXAMPLE_SEED_STRIDE = 1_000_003


def example_generators(seed: int, example_ids: Tensor, n: int) -> list[torch.Generator]:
    """One CPU generator per example seeded by (metric seed, global example id), so an example's random
    draws are the same whichever batch, position or rank it is scored in."""
    if (
        not torch.is_tensor(example_ids)
        or example_ids.dim() != 1
        or example_ids.shape[0] != n
        or example_ids.is_floating_point()
        or example_ids.is_complex()
    ):
        shape = tuple(example_ids.shape) if torch.is_tensor(example_ids) else type(example_ids).__name__
        raise ValueError(
            f"example_ids must be a 1-D integer tensor with one global index per example ({n}), got {shape}"
        )
    return [torch.Generator().manual_seed(seed * EXAMPLE_SEED_STRIDE + int(i)) for i in example_ids.tolist()]


def draw_per_example(
    generators: list[torch.Generator], rows: int, shape: torch.Size | tuple[int, ...], sampler
) -> Tensor:
    """(rows, *shape) draws for `rows` = len(generators) * k rows laid out example-major (captum's
    repeat_interleave): the k rows of example i are its generator's next k draws, one call each, so the
    stream does not depend on how the k samples are chunked."""
    n = len(generators)
    if n == 0 or rows % n:
        raise ValueError(f"{rows} rows cannot be split evenly over {n} examples")
    k = rows // n
    return torch.stack([sampler(tuple(shape), generator=g) for g in generators for _ in range(k)])


def example_subsets(generators: list[torch.Generator], runs: int, size: int, n_features: int) -> Tensor:
    """(n, runs, size) CPU pixel indices like `random_subsets`, example i drawn from generators[i]."""
    keys = torch.stack([torch.rand(runs, n_features, generator=g) for g in generators])
    return keys.argsort(-1)[..., :size]


def subset_drops(
    model: Model,
    x: Tensor,
    source: Tensor,
    target: Tensor,
    ref: Tensor,
    subsets: Tensor,
    score: str,
    max_batch: int,
) -> Tensor:
    """(N, runs) f(x) - f(x with S replaced by ref) for each pair's subsets S: the forward passes, which do
    not depend on the attributions."""
    n, c, h, w = x.shape
    runs = subsets.shape[1]
    base, _ = batched_scores(model, x, source, target, score, max_batch)
    removed = torch.zeros(n, runs, h * w, dtype=torch.bool, device=x.device)
    removed.scatter_(2, subsets, True)
    chunk = max(1, max_batch // n)
    drops = []
    for start in range(0, runs, chunk):
        mask = removed[:, start : start + chunk].transpose(0, 1)  # (r, N, H*W)
        r = mask.shape[0]
        images = torch.where(mask.view(r, n, 1, h, w), ref.unsqueeze(0), x.unsqueeze(0)).reshape(
            r * n, c, h, w
        )
        s, _ = batched_scores(model, images, source.repeat(r), target.repeat(r), score, max_batch)
        drops.append(base.unsqueeze(0) - s.view(r, n))
    return torch.cat(drops).T


def drop_correlation(a_pix: Tensor, subsets: Tensor, drops: Tensor) -> Tensor:
    """(N,) Pearson correlation, over the runs, of sum_S a with the drops of `subset_drops`."""
    n, runs = drops.shape
    att_sums = a_pix.gather(1, subsets.reshape(n, -1)).view(n, runs, -1).sum(-1)
    return pearson_rows(att_sums.double(), drops.double()).to(a_pix.dtype)


class _RandomSubsetMetric(Metric):
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, nr_runs: int, contrast: str, seed: int, max_batch: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if nr_runs < 2:
            raise ValueError(f"nr_runs must be >= 2 to compute a correlation, got {nr_runs}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.nr_runs = int(nr_runs)
        self.contrast = check_contrast(contrast)
        self.seed = int(seed)
        self.max_batch = int(max_batch)
        self._generator: torch.Generator | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def reset(self) -> None:
        super().reset()
        self._generator = None

    def _prepare(self, inputs, attributions, source, target, reference):
        x = check_images(inputs)
        n = x.shape[0]
        source = as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        ref = reference_like(reference(x, source, target) if callable(reference) else reference, x)
        return x, spatial_attributions(attributions, x), source, target, ref

    def _drop_key(self, model: Model, key: tuple | None) -> tuple | None:
        """Where `subset_drops` is filed in the batch's SharedWork: the model, the scored contrast and what
        `key` names (the reference, the pairs, the draw); None shares nothing."""
        return None if key is None else ("subset_drops", id(model), self.contrast, self.max_batch, *key)


def shared_key(reference_key: Hashable | None, example_ids: Tensor | None, *draw: object) -> tuple | None:
    """What a shared subset draw and its forward passes depend on besides the batch: the reference, the
    pairs' global ids (their generators) and the draw's settings; None (nothing shared) without either."""
    if reference_key is None or example_ids is None:
        return None
    return (reference_key, tuple(example_ids.tolist()), *draw)


class FaithfulnessCorrelation(_RandomSubsetMetric):
    """Faithfulness correlation (Bhatt et al. 2020), one value per example in [-1, 1]; higher is better.

    update(model, inputs, attributions, source, target, reference, subsets=None, example_ids=None): `subsets`
    optionally gives the (N, nr_runs, subset_size) flat pixel indices to remove (e.g. to reproduce another
    implementation); `example_ids` (N,) global indices draw each example's subsets from its own generator.
    compute() -> {"faithfulness_correlation": (N,)} (NaN where attributions or drops are constant).
    """

    output_directions = {"faithfulness_correlation": True}

    def __init__(
        self,
        nr_runs: int = 100,
        subset_size: int = 78,
        contrast: str = "one_vs_one",
        seed: int = 0,
        max_batch: int = 1024,
        **kwargs,
    ) -> None:
        super().__init__(nr_runs, contrast, seed, max_batch, **kwargs)
        if subset_size < 1:
            raise ValueError(f"subset_size must be >= 1, got {subset_size}")
        self.subset_size = int(subset_size)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(
        self,
        model: Model,
        inputs: Tensor,
        attributions: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        reference,
        subsets: Tensor | None = None,
        example_ids: Tensor | None = None,
        shared: SharedWork | None = None,
        reference_key: Hashable | None = None,
    ) -> None:
        x, a_pix, source, target, ref = self._prepare(inputs, attributions, source, target, reference)
        n, f = a_pix.shape
        if self.subset_size > f:
            raise ValueError(f"subset_size {self.subset_size} exceeds the {f} pixels of each image")
        key = None
        if subsets is None and example_ids is not None:
            draw = ("faithfulness", self.seed, self.nr_runs, self.subset_size, f)
            key = shared_key(reference_key, example_ids, *draw)

            def draw_subsets() -> Tensor:
                generators = example_generators(self.seed, example_ids, n)
                return example_subsets(generators, self.nr_runs, self.subset_size, f)

            subsets = share(shared, key and ("subsets", *key[1:]), draw_subsets)
        elif subsets is None:
            subsets = random_subsets(n, self.nr_runs, self.subset_size, f, self.generator(x.device))
        elif subsets.dim() != 3 or subsets.shape[0] != n or subsets.shape[1] < 2:
            raise ValueError(
                f"subsets must be (N={n}, runs >= 2, size) pixel indices, got {tuple(subsets.shape)}"
            )
        subsets = subsets.to(x.device, torch.long)
        drops = share(
            shared,
            self._drop_key(model, key),
            lambda: subset_drops(model, x, source, target, ref, subsets, self.contrast, self.max_batch),
        )
        self.values.append(drop_correlation(a_pix, subsets, drops).to(x.dtype))

    def compute(self) -> dict[str, Tensor]:
        return {"faithfulness_correlation": dim_zero_cat(self.values)}


class SensitivityN(_RandomSubsetMetric):
    """Sensitivity-n (Ancona et al. 2018): the faithfulness correlation for each subset size n.

    `subset_sizes` are pixel counts (ints) or fractions of the pixels (floats in (0, 1)).
    compute() -> {"sensitivity_n": (N, K) correlations, "n": (K,) subset sizes in pixels,
    "sensitivity_n@<n>": (N,) per size}. update(..., example_ids=None) as in `FaithfulnessCorrelation`.
    """

    output_directions = {"sensitivity_n": True}

    def __init__(
        self,
        subset_sizes: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8),
        nr_runs: int = 50,
        contrast: str = "one_vs_one",
        seed: int = 0,
        max_batch: int = 1024,
        **kwargs,
    ) -> None:
        super().__init__(nr_runs, contrast, seed, max_batch, **kwargs)
        sizes = list(subset_sizes)
        if not sizes or any(s <= 0 for s in sizes):
            raise ValueError(f"subset_sizes must be a non-empty list of positive sizes, got {sizes}")
        self.subset_sizes = sizes
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("sizes", default=[], dist_reduce_fx="cat")

    def pixel_counts(self, n_features: int) -> list[int]:
        counts = [
            int(round(s * n_features)) if isinstance(s, float) and s < 1 else int(s)
            for s in self.subset_sizes
        ]
        bad = [c for c in counts if not 1 <= c <= n_features]
        if bad:
            raise ValueError(
                f"subset sizes {self.subset_sizes} give {counts} pixels; each must be in 1..{n_features}"
            )
        return counts

    def update(
        self,
        model: Model,
        inputs: Tensor,
        attributions: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        reference,
        example_ids: Tensor | None = None,
        shared: SharedWork | None = None,
        reference_key: Hashable | None = None,
    ) -> None:
        x, a_pix, source, target, ref = self._prepare(inputs, attributions, source, target, reference)
        n, f = a_pix.shape
        counts = self.pixel_counts(f)
        key = None
        if example_ids is None:
            gen = self.generator(x.device)
            draws = [random_subsets(n, self.nr_runs, k, f, gen) for k in counts]
        else:
            key = shared_key(reference_key, example_ids, "sensitivity_n", self.seed, self.nr_runs, *counts, f)

            def draw_subsets() -> list[Tensor]:
                # one generator per pair, drawn size after size: each size's subsets follow the last's
                generators = example_generators(self.seed, example_ids, n)
                return [example_subsets(generators, self.nr_runs, k, f).to(x.device) for k in counts]

            draws = share(shared, key and ("subsets", *key[1:]), draw_subsets)
        cols = []
        for j, subsets in enumerate(draws):
            drops = share(
                shared,
                self._drop_key(model, key and (*key, j)),
                partial(subset_drops, model, x, source, target, ref, subsets, self.contrast, self.max_batch),
            )
            cols.append(drop_correlation(a_pix, subsets, drops).to(x.dtype))
        self.values.append(torch.stack(cols, 1))
        self.sizes.append(torch.tensor(counts, device=x.device).expand(n, -1))

    def compute(self) -> dict[str, Tensor]:
        values = dim_zero_cat(self.values)
        sizes = dim_zero_cat(self.sizes)[0]
        out = {"sensitivity_n": values, "n": sizes}
        for j, k in enumerate(sizes.tolist()):
            out[f"sensitivity_n@{k}"] = values[:, j]
        return out
