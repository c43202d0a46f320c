"""The report layer's input: per-example metric values, perturbation curves and sanity correlations.

The evaluation stage measures; this format is all the report layer sees, so tables and plots can be
rebuilt later from the files a run leaves behind (`records.jsonl`, `curves.json`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RECORDS_FILE = "records.jsonl"
CURVES_FILE = "curves.json"
CURVE_KINDS = ("deletion", "insertion")
# `method` of a metric that does not depend on the attribution method (FID, validity of a generator)
NO_METHOD = "-"


def _check_name(field_name: str, value: Any, allow_slash: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field_name} must be a non-empty string, got {value!r}")
    if not allow_slash and "/" in value:
        raise ValueError(
            f"{field_name}={value!r} contains '/', which separates parts of the W&B key "
            f"eval/<method>/<baseline>/<metric>; use '_' instead"
        )
    return value


def as_floats(values: Any) -> np.ndarray:
    """A flat float64 array from a float, sequence, numpy array or (GPU) tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class Record:
    """One measured value: metric `metric` of method `method` with baseline `baseline` on one example.

    `higher_is_better` is the metric's direction as its torchmetrics class declares it (the class
    attribute `output_directions`), None when unknown; `example` pairs values across baselines.
    """

    method: str
    baseline: str
    metric: str
    value: float
    example: int | None = None
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        _check_name("method", self.method)
        _check_name("baseline", self.baseline)
        _check_name("metric", self.metric, allow_slash=True)
        object.__setattr__(self, "value", float(self.value))
        if self.higher_is_better is not None and not isinstance(self.higher_is_better, bool):
            raise ValueError(
                f"higher_is_better={self.higher_is_better!r} of metric {self.metric!r} must be True, "
                f"False or None"
            )


@dataclass(frozen=True)
class Curve:
    """Mean score (e.g. logit_c - logit_t) after removing (`deletion`, MoRF) or restoring (`insertion`,
    LeRF) a growing fraction of features; `reference` names what removed features were replaced by
    (`baseline`: the attribution's own baseline; or a fixed one like `zero`, `blur`, `road`)."""

    kind: str
    method: str
    baseline: str
    fractions: tuple[float, ...]
    scores: tuple[float, ...]
    n: int = 1
    reference: str = "baseline"

    def __post_init__(self) -> None:
        if self.kind not in CURVE_KINDS:
            raise ValueError(f"curve kind={self.kind!r} is not one of {CURVE_KINDS}")
        _check_name("method", self.method)
        _check_name("baseline", self.baseline)
        _check_name("reference", self.reference)
        object.__setattr__(self, "fractions", tuple(as_floats(self.fractions).tolist()))
        object.__setattr__(self, "scores", tuple(as_floats(self.scores).tolist()))
        if len(self.fractions) != len(self.scores) or not self.fractions:
            raise ValueError(
                f"{self.kind} curve {self.method}/{self.baseline}: {len(self.fractions)} fractions but "
                f"{len(self.scores)} scores; give one mean score per fraction removed"
            )
        if self.n < 1:
            raise ValueError(f"curve n={self.n} must count at least one example")


@dataclass(frozen=True)
class SanityCurve:
    """Cascading randomisation: mean Spearman correlation between the trained model's attributions and
    those after randomising the layers up to and including `layers[i]` (top layer first)."""

    method: str
    baseline: str
    layers: tuple[str, ...]
    spearman: tuple[float, ...]
    n: int = 1

    def __post_init__(self) -> None:
        _check_name("method", self.method)
        _check_name("baseline", self.baseline)
        object.__setattr__(self, "layers", tuple(str(layer) for layer in self.layers))
        object.__setattr__(self, "spearman", tuple(as_floats(self.spearman).tolist()))
        if len(self.layers) != len(self.spearman) or not self.layers:
            raise ValueError(
                f"sanity curve {self.method}/{self.baseline}: {len(self.layers)} layers but "
                f"{len(self.spearman)} correlations; give one correlation per randomised layer"
            )
        if self.n < 1:
            raise ValueError(f"sanity curve n={self.n} must count at least one example")


@dataclass
class EvalResults:
    """Everything one evaluation run measured; the single object handed to the report layer."""

    records: list[Record] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    sanity: list[SanityCurve] = field(default_factory=list)
    # metric name -> higher is better, for records added without an explicit direction
    directions: dict[str, bool] = field(default_factory=dict)

    def declare(self, metric: str, higher_is_better: bool) -> None:
        """Give `metric` a direction before its records are added (from a metric's `output_directions`)."""
        if not isinstance(higher_is_better, bool):
            raise ValueError(
                f"higher_is_better for {metric!r} must be True or False, got {higher_is_better!r}"
            )
        self.directions[metric] = higher_is_better

    def add(
        self,
        method: str,
        baseline: str,
        metric: str,
        values: Any,
        first_example: int = 0,
        higher_is_better: bool | None = None,
    ) -> None:
        """Append one record per value (a scalar, list, array or tensor of per-example values).

        Direction: `higher_is_better` if given, else the one `declare`d for `metric`, else unknown."""
        direction = self.directions.get(metric) if higher_is_better is None else higher_is_better
        for offset, value in enumerate(as_floats(values)):
            self.records.append(
                Record(method, baseline, metric, float(value), first_example + offset, direction)
            )

    def add_curve(
        self,
        kind: str,
        method: str,
        baseline: str,
        fractions: Sequence[float] | Any,
        scores: Sequence[float] | Any,
        n: int = 1,
        reference: str = "baseline",
    ) -> None:
        self.curves.append(Curve(kind, method, baseline, fractions, scores, n, reference))

    def add_sanity(
        self, method: str, baseline: str, layers: Sequence[str], spearman: Sequence[float] | Any, n: int = 1
    ) -> None:
        self.sanity.append(SanityCurve(method, baseline, tuple(layers), spearman, n))

    def extend(self, other: EvalResults) -> None:
        self.records.extend(other.records)
        self.curves.extend(other.curves)
        self.sanity.extend(other.sanity)
        self.directions.update(other.directions)

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write `records.jsonl` and `curves.json` (curves and sanity) atomically into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"records": directory / RECORDS_FILE, "curves": directory / CURVES_FILE}
        write_records_jsonl(self.records, paths["records"])
        payload = {"curves": [asdict(c) for c in self.curves], "sanity": [asdict(s) for s in self.sanity]}
        write_text_atomic(paths["curves"], json.dumps(payload, indent=1))
        return paths

    @classmethod
    def load(cls, directory: str | Path) -> EvalResults:
        """Read what `save` wrote; a missing `curves.json` means no curves (records are required)."""
        directory = Path(directory)
        records_path = directory / RECORDS_FILE
        if not records_path.is_file():
            raise FileNotFoundError(
                f"no {RECORDS_FILE} in {directory}; it is written by the evaluation stage"
            )
        results = cls(records=read_records_jsonl(records_path))
        curves_path = directory / CURVES_FILE
        if curves_path.is_file():
            curves, sanity = read_curves_json(curves_path)
            results.curves, results.sanity = curves, sanity
        return results


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write through a hidden temp file in the same directory, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_records_jsonl(records: Iterable[Record], path: str | Path) -> Path:
    """One JSON object per line; non-finite values are written as null."""
    lines = []
    for record in records:
        row = asdict(record)
        row["value"] = row["value"] if math.isfinite(row["value"]) else None
        lines.append(json.dumps(row))
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


def read_records_jsonl(path: str | Path) -> list[Record]:
    records = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            value = row["value"]
            records.append(
                Record(
                    row["method"],
                    row["baseline"],
                    row["metric"],
                    float("nan") if value is None else value,
                    row.get("example"),
                    row.get("higher_is_better"),
                )
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a record ({error}): {line[:200]}") from None
    return records


def read_curves_json(path: str | Path) -> tuple[list[Curve], list[SanityCurve]]:
    payload = json.loads(Path(path).read_text())
    curves = [Curve(**row) for row in payload.get("curves", [])]
    sanity = [SanityCurve(**row) for row in payload.get("sanity", [])]
    return curves, sanity
