"""The evaluation's metrics: each torchmetrics metric of this package behind the `ExplainedBatch` protocol.

Each class below reads what it needs from the batch, feeds its torchmetrics parent (whose tensor-level
`update` stays usable on its own) and names its outputs, with their directions, for the report.
`conf/evaluation/default.yaml` instantiates them by `_target_`; see ganmex/metrics/protocol.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ganmex.metrics.counterfactual import CounterfactualQuality
from ganmex.metrics.faithfulness import FaithfulnessCorrelation, SensitivityN
from ganmex.metrics.localisation import Localisation
from ganmex.metrics.perturbation import InsertionCurve, PerturbationCurve
from ganmex.metrics.protocol import (
    CurveOutput,
    ExplainedBatch,
    LayerOutput,
    MetricOutput,
    Output,
    finite_mean,
    row_nanmean,
)
from ganmex.metrics.robustness import Infidelity, SensitivityMax
from ganmex.metrics.sanity import CascadingRandomization
from ganmex.metrics.sparsity import Gini

__all__ = [
    "CounterfactualMetric",
    "CurveMetric",
    "FaithfulnessCorrelationMetric",
    "GiniMetric",
    "InfidelityMetric",
    "LocalisationMetric",
    "SanityMetric",
    "SensitivityMaxMetric",
    "SensitivityNMetric",
]

# a mean curve is drawn from per-example curves rescaled to 1 at x and 0 at the reference; an example whose
# two ends differ by less than this has no scale and is left out of the mean
CURVE_GAP = 1e-6


def _scored(batch: ExplainedBatch) -> tuple:
    """(model, x, attributions, source, target, reference): what the scoring metrics' kernels take."""
    return batch.model, batch.x, batch.attributions.detach(), batch.source, batch.target, batch.reference


def _shared(batch: ExplainedBatch) -> dict:
    """The per-pair ids and the batch's shared-work memo, for the metrics whose draws are per pair."""
    return {"example_ids": batch.example_ids, "shared": batch.shared, "reference_key": batch.reference_key}


def _known(batch: ExplainedBatch) -> Tensor | None:
    """The batch's own attributions for metrics that would re-explain x itself, when work is shared."""
    return None if batch.shared is None else batch.attributions.detach()


def normalised_curve(curve: Tensor, mode: str) -> Tensor:
    """Per example: 1 at the input and 0 at the reference (deletion), 0 -> 1 (insertion)."""
    start, end = (curve[:, :1], curve[:, -1:]) if mode == "deletion" else (curve[:, -1:], curve[:, :1])
    gap = start - end
    safe = torch.where(gap.abs() > CURVE_GAP, gap, torch.full_like(gap, float("nan")))
    return (curve - end) / safe


class CurveMetric(PerturbationCurve):
    """Deletion / insertion curve against each removal reference (the baseline itself, blur, ROAD...).

    Records: `<key>_auc` (normalised AUC), `<key>_auc_raw` (the raw score's AUC, one scale across
    baselines under a shared reference), `<prefix>aopc` (deletion only), `<prefix>flip_fraction`;
    `plot` adds the mean curve to curves.png.
    """

    references = "all"

    def __init__(self, prefix: str = "", plot: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        self.plot = bool(plot)

    def update(self, batch: ExplainedBatch) -> None:
        super().update(*_scored(batch))

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        values = self.compute()
        directions = (InsertionCurve if self.mode == "insertion" else PerturbationCurve).output_directions
        yield Output(f"{key}_auc", values["auc_normalised"], directions["auc_normalised"])
        if self.mode == "deletion":
            yield Output(f"{self.prefix}aopc", values["aopc"], directions["aopc"])
        yield Output(f"{self.prefix}flip_fraction", values["flip_fraction"], directions["flip_fraction"])
        yield Output(f"{key}_auc_raw", values["auc"], directions["auc"])
        if self.plot:
            curve = finite_mean(normalised_curve(values["curve"], self.mode))
            yield CurveOutput(
                self.mode, values["fractions"][0].tolist(), curve.tolist(), len(values["curve"])
            )


class FaithfulnessCorrelationMetric(FaithfulnessCorrelation):
    """Faithfulness correlation against each reference image (an imputer has no image to take pixels from)."""

    references = "images"

    def update(self, batch: ExplainedBatch) -> None:
        super().update(*_scored(batch), **_shared(batch))

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        yield Output(
            key,
            self.compute()["faithfulness_correlation"],
            self.output_directions["faithfulness_correlation"],
        )


class SensitivityNMetric(SensitivityN):
    """Sensitivity-n against the first reference image, on the first `expensive_images` pairs; the record is
    each pair's mean correlation over the subset sizes."""

    references = "first_image"
    expensive = True

    def update(self, batch: ExplainedBatch) -> None:
        super().update(*_scored(batch), **_shared(batch))

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        yield Output(
            key, row_nanmean(self.compute()["sensitivity_n"]), self.output_directions["sensitivity_n"]
        )


class InfidelityMetric(Infidelity):
    """Infidelity of the attributions under Gaussian noise on x."""

    def update(self, batch: ExplainedBatch) -> None:
        super().update(*_scored(batch)[:-1], example_ids=batch.example_ids)

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        yield Output(key, self.compute()["infidelity"], self.output_directions["infidelity"])


class SensitivityMaxMetric(SensitivityMax):
    """Sensitivity-max on the first `expensive_images` pairs: each sample re-explains a perturbed x."""

    expensive = True
    requires = ("attributions", "reexplain")

    def update(self, batch: ExplainedBatch) -> None:
        super().update(
            batch.reexplain,
            batch.x,
            batch.source,
            batch.target,
            example_ids=batch.example_ids,
            attributions=_known(batch),
        )

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        yield Output(key, self.compute()["sensitivity_max"], self.output_directions["sensitivity_max"])


class SanityMetric(CascadingRandomization):
    """Cascading randomisation on the first `expensive_images` pairs: `sanity_spearman` per pair (mean over
    layers) and the per-layer curve of sanity.png."""

    expensive = True
    requires = ("attributions", "explain_model")

    def update(self, batch: ExplainedBatch) -> None:
        super().update(
            batch.model, batch.explain_model, batch.x, batch.source, batch.target, attributions=_known(batch)
        )

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        spearman = self.compute()["spearman"]
        yield Output("sanity_spearman", row_nanmean(spearman), self.output_directions["spearman"])
        layers = self.layer_names or [f"layer{i}" for i in range(spearman.shape[1])]
        yield LayerOutput(list(layers), finite_mean(spearman).tolist(), len(spearman))


class GiniMetric(Gini):
    """Sparsity (Gini index) of the attributions."""

    def update(self, batch: ExplainedBatch) -> None:
        super().update(batch.attributions.detach())

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        yield Output("gini", self.compute()["gini"], self.output_directions["gini"])


class LocalisationMetric(Localisation):
    """Localisation against ground-truth masks: scored only where the dataset has them (decoy_mnist)."""

    requires = ("attributions", "masks")

    def update(self, batch: ExplainedBatch) -> None:
        super().update(batch.attributions.detach(), batch.masks)

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        for measure, values in self.compute().items():
            yield Output(measure, values, self.output_directions[measure])


# the spread of KID over its random subsets: a property of the estimate, not of the counterfactuals
NOT_REPORTED = ("kid_std",)


class CounterfactualMetric(CounterfactualQuality):
    """Quality of each counterfactual baseline's x' (GANMEX, MDTS): validity, proximity, realism."""

    requires = ("baseline_values",)
    scope = "counterfactual"
    context = ("train_images", "oracle")

    def update(self, batch: ExplainedBatch) -> None:
        super().update(
            batch.model, batch.x, batch.baseline_values, batch.source, batch.target, masks=batch.masks
        )

    def outputs(self, key: str) -> Iterator[MetricOutput]:
        for name, values in self.compute().items():
            if name not in NOT_REPORTED:
                yield Output(name, values.reshape(-1), self.output_directions[name])
