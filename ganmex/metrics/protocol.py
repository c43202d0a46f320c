"""The evaluation's metric protocol: every metric takes one `ExplainedBatch` and yields its own outputs.

The evaluation loop (ganmex/pipeline/evaluation_module.py) knows no metric by name. For each configured
`evaluation.metrics.<key>` it reads four class attributes, builds one instance per scope, calls
`update(batch)` and, at the end, turns `outputs(key)` into report records:

- `references`: "none" (one instance per method x baseline), "all" (one per removal reference, images
  and imputers), "images" (one per reference that is an image, not an imputer) or "first_image";
  the batch then carries that reference and the record names get `@<reference>`.
- `expensive`: True -> the metric sees only the first `evaluation.expensive_images` pairs.
- `requires`: batch fields that must be present (e.g. `masks`); the metric is skipped where they are not.
- `scope`: "explanation" (each method x baseline's attributions) or "counterfactual" (each counterfactual
  baseline's images x', once per batch, method `-`).
- `context`: names of evaluation-wide objects passed to the constructor when known (`train_images`,
  `oracle`).

A metric written outside ganmex only needs `update(batch)` and `outputs(key)`; subclass a torchmetrics
`Metric` so that its states are gathered across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from ganmex.metrics.shared import SharedWork

REFERENCE_SCOPES = ("none", "all", "images", "first_image")
METRIC_SCOPES = ("explanation", "counterfactual")


@dataclass(frozen=True)
class ExplainedBatch:
    """One batch of (source, target) pairs, explained by one method against one baseline.

    `baseline_values` are the baseline images the method used (per example, or a reference set; None
    for gradient-only methods; the counterfactuals x' under the counterfactual scope). `reexplain` and
    `explain_model` recompute attributions for sensitivity metrics and the sanity check.
    """

    model: nn.Module
    x: Tensor
    source: Tensor
    target: Tensor
    method: str
    baseline: str
    attributions: Tensor | None = None
    baseline_values: Tensor | None = None
    baseline_kind: str = "none"
    example_ids: Tensor | None = None
    masks: Tensor | None = None
    # the removal reference of per-reference metrics (an image batch or an object with `impute`)
    reference: Any = None
    reference_name: str | None = None
    # (x, source, target) -> attributions with f, the baseline following x (sensitivity)
    reexplain: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    # (model, x, source, target) -> attributions of another model with these baseline values (sanity)
    explain_model: Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor] | None = None
    # the test batch's memo of attribution-independent work (ganmex/metrics/shared.py), or None
    shared: SharedWork | None = None

    @property
    def reference_key(self) -> tuple[str, ...] | None:
        """What the removal reference is, for work shared across methods: a named reference is the same
        image for every method; `baseline` is the baseline's own values (the mean of a reference set)."""
        if self.reference_name is None:
            return None
        if self.reference_name == "baseline":
            return ("baseline", self.baseline, self.baseline_kind)
        return (self.reference_name,)

    def __len__(self) -> int:
        return self.x.shape[0]

    def head(self, n: int) -> ExplainedBatch:
        """The first n pairs (per-example tensors sliced; a reference set stays whole)."""

        def cut(value: Any) -> Any:
            return value[:n] if torch.is_tensor(value) and value.shape[:1] == self.x.shape[:1] else value

        def cut_images(value: Any) -> Any:  # a reference batch shaped like x; a single image stays
            return value[:n] if torch.is_tensor(value) and value.shape == self.x.shape else value

        values = self.baseline_values
        if self.baseline_kind == "per_example" and values is not None:
            values = values[:n]
        return replace(
            self,
            x=self.x[:n],
            source=self.source[:n],
            target=self.target[:n],
            attributions=cut(self.attributions),
            baseline_values=values,
            example_ids=cut(self.example_ids),
            masks=cut(self.masks),
            reference=cut_images(self.reference),
        )


@dataclass(frozen=True)
class Output:
    """Per-example values (or one per-set value) of one named quantity, with its direction."""

    name: str
    values: Tensor
    higher_is_better: bool | None


@dataclass(frozen=True)
class CurveOutput:
    """A mean perturbation curve (kind `deletion` or `insertion`) over `n` examples."""

    kind: str
    fractions: list[float]
    scores: list[float]
    n: int


@dataclass(frozen=True)
class LayerOutput:
    """Mean Spearman correlation per randomised layer (the cascading-randomisation sanity check)."""

    layers: list[str]
    spearman: list[float]
    n: int


MetricOutput = Output | CurveOutput | LayerOutput


class EvaluationMetric(Protocol):
    """What the evaluation loop needs of a metric (see the module docstring for the class attributes)."""

    references: ClassVar[str]
    expensive: ClassVar[bool]
    requires: ClassVar[tuple[str, ...]]
    scope: ClassVar[str]
    context: ClassVar[tuple[str, ...]]

    def update(self, batch: ExplainedBatch) -> None: ...

    def outputs(self, key: str) -> Iterator[MetricOutput]: ...


def protocol_of(metric_class: type) -> dict[str, Any]:
    """A metric class's protocol attributes, with defaults, checked; one clear line when it lacks one."""
    if not callable(getattr(metric_class, "outputs", None)):
        raise TypeError(
            f"{metric_class.__module__}.{metric_class.__qualname__} is no evaluation metric: it needs "
            f"update(batch: ExplainedBatch) and outputs(key) (see ganmex/metrics/protocol.py)"
        )
    spec = {
        "references": getattr(metric_class, "references", "none"),
        "expensive": bool(getattr(metric_class, "expensive", False)),
        "requires": tuple(getattr(metric_class, "requires", ("attributions",))),
        "scope": getattr(metric_class, "scope", "explanation"),
        "context": tuple(getattr(metric_class, "context", ())),
    }
    if spec["references"] not in REFERENCE_SCOPES:
        raise ValueError(
            f"{metric_class.__qualname__}.references={spec['references']!r}; choose one of {REFERENCE_SCOPES}"
        )
    unknown = [f for f in spec["requires"] if f not in ExplainedBatch.__dataclass_fields__]
    if unknown:
        raise ValueError(
            f"{metric_class.__qualname__}.requires names {unknown}, which ExplainedBatch has not; "
            f"choose from {', '.join(ExplainedBatch.__dataclass_fields__)}"
        )
    if spec["scope"] not in METRIC_SCOPES:
        raise ValueError(
            f"{metric_class.__qualname__}.scope={spec['scope']!r}; choose one of {METRIC_SCOPES}"
        )
    return spec


def is_image(reference: Any) -> bool:
    """A reference image (batch) rather than an imputer with `impute(x, removed)` (ROAD)."""
    return not hasattr(reference, "impute")


def row_nanmean(values: Tensor) -> Tensor:
    """Mean of each row over its finite entries (NaN where none is finite)."""
    finite = torch.isfinite(values)
    total = torch.where(finite, values, torch.zeros_like(values)).sum(1)
    count = finite.sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def finite_mean(values: Tensor) -> Tensor:
    """Column means over finite entries (0 where none is finite): the mean curve of per-example curves."""
    values = values.float()
    finite = torch.isfinite(values)
    return torch.where(finite, values, torch.zeros_like(values)).sum(0) / finite.sum(0).clamp_min(1)
