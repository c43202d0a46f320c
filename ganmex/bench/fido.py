"""Seconds per image of FIDO / BBMP saliency, batched against one image at a time (as the original ran):
what batching the mask optimisation buys, with the shipped hyper-parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganmex.bench.config import build_shipped
from ganmex.bench.fido_grid import build_infillers
from ganmex.bench.inputs import ARTIFACTS, correct_digits, require_classifier
from ganmex.bench.timing import seconds
from ganmex.report.tables import markdown_table

METHODS = ("fido_ssr", "fido_sdr", "bbmp_ssr", "bbmp_sdr")
INFILLS = ("mean", "local_mean")  # need no artifact


@dataclass(frozen=True)
class FidoSpeed:
    """One (method, in-fill): its optimisation budget and seconds per image both ways."""

    method: str
    infill: str
    epochs: int
    samples: int
    batched: float
    single: float  # NaN when not timed

    @property
    def speedup(self) -> float:
        return self.single / self.batched


def fido_speed(
    model: nn.Module,
    x: Tensor,
    source: Tensor,
    target: Tensor,
    methods: Sequence[str] = METHODS,
    infills: Sequence[str] = INFILLS,
    single: int = 0,
) -> list[FidoSpeed]:
    """Time each method x in-fill on the whole batch, and on its first `single` images one by one."""
    fillers = build_infillers(infills, {})
    rows = []
    for method_name in methods:
        for fill_name, filler in fillers.items():
            method = build_shipped(f"attribution/{method_name}.yaml", method_name)
            batched = seconds(method, model, x, source, target, filler) / len(x)
            one_by_one = float("nan")
            if single:
                images = [(x[i : i + 1], source[i : i + 1], target[i : i + 1]) for i in range(single)]
                one_by_one = sum(seconds(method, model, *item, filler) for item in images) / single
            rows.append(FidoSpeed(method_name, fill_name, method.epochs, method.samples, batched, one_by_one))
    return rows


def fido_speed_markdown(rows: Sequence[FidoSpeed]) -> str:
    header = [
        "method",
        "in-fill",
        "steps x MC samples",
        "batched s/image",
        "one-at-a-time s/image",
        "speed-up",
    ]
    body = [
        [
            r.method,
            r.infill,
            f"{r.epochs} x {r.samples}",
            f"{r.batched:.3f}",
            f"{r.single:.3f}",
            f"{r.speedup:.1f}x",
        ]
        for r in rows
    ]
    return "\n".join(markdown_table(header, body)) + "\n"


def run_fido_bench(
    classifier: Path | None = None,
    batch: int = 32,
    single: int = 4,
    methods: Sequence[str] = METHODS,
    infills: Sequence[str] = INFILLS,
    artifacts: Path = ARTIFACTS,
) -> str:
    """The markdown table for the first `batch` correctly classified real test digits (runner-up targets)."""
    from ganmex.models.loading import load_classifier

    path = require_classifier(classifier, artifacts)
    model = load_classifier(path)
    x, y, t = correct_digits(model, batch)
    rows = fido_speed(model, x, y, t, methods, infills, single)
    header = f"{len(x)} digits, classifier {path.name}, {torch.get_num_threads()} thread(s)\n\n"
    return header + fido_speed_markdown(rows)
