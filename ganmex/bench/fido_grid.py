"""The FIDO grid: {FIDO, BBMP} x {SSR, SDR} x in-fills, each map scored by the evaluation's own deletion
metric, with removed pixels in-filled by the map's own in-filler and by black.

FIDO's point is that the in-fill decides what a saliency map means; the grid shows it on real digits.
Hyper-parameters are the shipped ones (conf/attribution/<method>.yaml, conf/infill/<name>.yaml,
conf/evaluation/default.yaml's `deletion`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganmex.bench.config import build_shipped
from ganmex.bench.inputs import ARTIFACTS, correct_digits, newest, require_classifier
from ganmex.explain.infill import InFiller
from ganmex.metrics.evaluation import CurveMetric
from ganmex.metrics.protocol import ExplainedBatch, Output
from ganmex.report.tables import markdown_table

log = logging.getLogger(__name__)

METHODS = ("fido_ssr", "fido_sdr", "bbmp_ssr", "bbmp_sdr")
INFILLS = ("mean", "blur", "local_mean", "autoencoder", "ganmex")
# in-fills made from an artifact: (the stage that trains it, the in-filler's argument naming it)
ARTIFACT_INFILLS = {"autoencoder": ("autoencoder", "model"), "ganmex": ("gan", "generator")}
DELETION = "deletion"  # the evaluation's metric key (conf/evaluation/default.yaml)
AUC, FLIP = f"{DELETION}_auc", "flip_fraction"


@dataclass(frozen=True)
class GridRow:
    """One (method, in-fill) cell: seconds per image and the deletion scores under two references."""

    method: str
    infill: str
    seconds_per_image: float
    auc_own: float
    flip_own: float
    auc_black: float
    flip_black: float


def build_infillers(
    names: Sequence[str], artifacts: Mapping[str, Path | None], seed: int = 0
) -> dict[str, InFiller]:
    """The shipped in-fillers by name; one built from an artifact (autoencoder, ganmex) is left out with a
    warning when `artifacts[stage]` is None."""
    fillers: dict[str, InFiller] = {}
    for name in names:
        overrides = {}
        if name in ARTIFACT_INFILLS:
            stage, key = ARTIFACT_INFILLS[name]
            if artifacts.get(stage) is None:
                log.warning(
                    "%s in-fill left out: no finished %s artifact (pass --%s <dir>)", name, stage, stage
                )
                continue
            overrides[key] = str(artifacts[stage])
        fillers[name] = build_shipped(f"infill/{name}.yaml", overrides=overrides, seed=seed)
    return fillers


def deletion_scores(
    model: nn.Module, x: Tensor, saliency: Tensor, source: Tensor, target: Tensor, reference: object
) -> tuple[float, float]:
    """(mean normalised deletion AUC, mean flip fraction) of the evaluation's `deletion` metric, removed
    pixels replaced by `reference` (an image batch, or an in-filler as imputer)."""
    metric: CurveMetric = build_shipped("evaluation/default.yaml", "metrics", DELETION)
    batch = ExplainedBatch(model, x, source, target, "saliency", "in-fill", saliency, reference=reference)
    metric.update(batch)
    values = {out.name: out.values for out in metric.outputs(DELETION) if isinstance(out, Output)}
    return _nanmean(values[AUC]), _nanmean(values[FLIP])


def _nanmean(values: Tensor) -> float:
    return float(values.nanmean()) if (~values.isnan()).any() else float("nan")


def removal_reference(filler: InFiller, x: Tensor, source: Tensor, target: Tensor) -> object:
    """What a deletion curve removes pixels to: a fixed fill as its image, a mask-aware one as imputer."""
    if filler.mask_dependent:
        return filler
    with torch.no_grad():
        return filler.fill(x, torch.ones_like(x[:, :1]), source, target)


def fido_grid(
    model: nn.Module,
    x: Tensor,
    source: Tensor,
    target: Tensor,
    fillers: Mapping[str, InFiller],
    methods: Sequence[str] = METHODS,
    epochs: int | None = None,
    seed: int = 0,
) -> tuple[list[GridRow], dict[tuple[str, str], Tensor]]:
    """Each method x in-fill's saliency maps and row; `epochs` overrides every method's steps."""
    from rich.progress import track

    rows, maps = [], {}
    black = torch.zeros_like(x)
    cells = [(m, f) for m in methods for f in fillers]
    for method_name, fill_name in track(cells, description="FIDO grid"):
        method = build_shipped(f"attribution/{method_name}.yaml", method_name, seed=seed)
        if epochs:
            method.epochs = epochs
        filler = fillers[fill_name]
        start = time.perf_counter()
        saliency = method(model, x, source, target, infill=filler)
        per_image = (time.perf_counter() - start) / len(x)
        maps[(method_name, fill_name)] = saliency
        own = deletion_scores(
            model, x, saliency, source, target, removal_reference(filler, x, source, target)
        )
        zero = deletion_scores(model, x, saliency, source, target, black)
        rows.append(GridRow(method_name, fill_name, per_image, *own, *zero))
    return rows, maps


def grid_markdown(rows: Sequence[GridRow], header: str) -> str:
    """results.md: a line saying what was run, then one table row per cell."""
    columns = ["method", "in-fill", "s / image", "deletion AUC (own in-fill)", "flip fraction (own)"]
    columns += ["deletion AUC (black)", "flip fraction (black)"]
    body = [
        [r.method, r.infill, f"{r.seconds_per_image:.2f}"]
        + [f"{v:.3f}" for v in (r.auc_own, r.flip_own, r.auc_black, r.flip_black)]
        for r in rows
    ]
    return "\n".join([header, "", *markdown_table(columns, body)]) + "\n"


def run_fido_grid(
    out: Path,
    classifier: Path | None = None,
    autoencoder: Path | None = None,
    gan: Path | None = None,
    n: int = 16,
    epochs: int | None = None,
    seed: int = 0,
    artifacts: Path = ARTIFACTS,
) -> str:
    """Run the grid on the first n correctly classified real test digits; write saliency.pt, results.md
    and grid.png to `out`; return results.md's text."""
    from ganmex.models.loading import load_classifier
    from ganmex.report.saliency_grid import save_saliency_grid

    classifier = require_classifier(classifier, artifacts)
    model = load_classifier(classifier)
    x, y, t = correct_digits(model, n)
    paths = {
        "autoencoder": autoencoder or newest("autoencoder", artifacts),
        "gan": gan or newest("gan", artifacts),
    }
    rows, maps = fido_grid(model, x, y, t, build_infillers(INFILLS, paths, seed), epochs=epochs, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"maps": maps, "images": x, "labels": y, "targets": t, "classifier": str(classifier)}
    torch.save(payload, out / "saliency.pt")
    header = (
        f"{len(x)} real MNIST test digits, classifier {classifier.name}, target = runner-up class, "
        f"{torch.get_num_threads()} CPU threads."
    )
    text = grid_markdown(rows, header)
    (out / "results.md").write_text(text)
    save_saliency_grid(x, y, t, maps, out / "grid.png")
    return text
