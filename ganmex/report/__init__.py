"""The report layer: measured numbers in, results.csv / results.md / curves.png / sanity.png / W&B out.

The evaluation stage fills an `EvalResults` and calls `write_report(results, run_dir, config)`;
`scripts/report.py` rebuilds the same outputs over a folder of finished runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganmex.report.leaderboard import DEFAULT_ALPHA, DEFAULT_HEADLINE, Leaderboard, build_leaderboard
from ganmex.report.records import NO_METHOD, Curve, EvalResults, Record, SanityCurve
from ganmex.report.tables import aggregate, write_results_csv, write_results_markdown

log = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
CURVES_PNG = "curves.png"
SANITY_PNG = "sanity.png"


@dataclass(frozen=True)
class ReportFiles:
    """Where `write_report` put things; a plot is None when there was nothing to draw."""

    results_csv: Path
    results_md: Path
    records: Path
    curves_json: Path
    curves_png: Path | None
    sanity_png: Path | None
    logged_to_wandb: bool
    leaderboard: Leaderboard | None = None
    figures: tuple[Path, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The evaluation stage's entries for metrics.json and the run summary block (run_summary.py):
        the leaderboard as plain-text lines, and the output files by name."""
        from ganmex.report.leaderboard import leaderboard_lines
        from ganmex.report.run_summary import LEADERBOARD_KEY, OUTPUTS_KEY

        outputs = {"results": self.results_md, "table": self.results_csv, "curves": self.curves_png}
        outputs |= {"sanity": self.sanity_png, **{p.stem: p for p in self.figures}}
        return {
            LEADERBOARD_KEY: leaderboard_lines(self.leaderboard) if self.leaderboard else [],
            OUTPUTS_KEY: {name: str(path) for name, path in outputs.items() if path is not None},
        }

    def paths(self) -> list[Path]:
        """results.md, then every figure written: what a run's last lines point to."""
        return [
            self.results_md,
            *(p for p in (self.curves_png, self.sanity_png) if p is not None),
            *self.figures,
        ]


def headline_config(config: Any) -> tuple[list[str] | None, float]:
    """`evaluation.headline_metrics` and `evaluation.headline_alpha` from a run config, else defaults."""
    evaluation = _get(config, "evaluation")
    patterns = _get(evaluation, "headline_metrics")
    alpha = _get(evaluation, "headline_alpha")
    if patterns is not None:
        if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(
                f"evaluation.headline_metrics={patterns!r} must be a list of metric names or glob patterns, "
                f"e.g. [deletion_auc@blur, flip_fraction@blur]"
            )
        patterns = list(patterns)
    return patterns, DEFAULT_ALPHA if alpha is None else float(alpha)


def _get(node: Any, key: str) -> Any:
    if node is None:
        return None
    if isinstance(node, dict):
        return node.get(key)
    try:
        return node.get(key) if hasattr(node, "get") else getattr(node, key, None)
    except Exception:  # an OmegaConf node without the key in struct mode
        return None


def write_report(
    results: EvalResults,
    out_dir: str | Path,
    config: Any = None,
    confidence: float = 0.95,
    layout: str = "metric",
    console: bool = True,
    wandb: bool = True,
    extra_images: dict[str, Path] | None = None,
) -> ReportFiles:
    """Write every output of an evaluation run into `out_dir`, print it, and log it to an active W&B run.

    `extra_images` (name -> PNG, e.g. attribution grids) are logged to W&B alongside the plots.
    Under DDP call it on rank zero only, after the metrics have been gathered.
    """
    from ganmex.report.console import print_leaderboard
    from ganmex.report.leaderboard import leaderboard_markdown
    from ganmex.report.plots import plot_curves, plot_sanity
    from ganmex.report.wandb_log import log_results

    if not results.records:
        raise ValueError(
            "no records to report: the evaluation measured nothing (check evaluation.methods, "
            "evaluation.baselines and evaluation.metrics)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = results.save(out_dir)
    frame = aggregate(results.records, confidence)
    headline, alpha = headline_config(config)
    board = build_leaderboard(results.records, headline, alpha)
    write_results_csv(frame, out_dir / RESULTS_CSV)
    write_results_markdown(frame, out_dir / RESULTS_MD, layout, leaderboard=leaderboard_markdown(board))
    curves_png = plot_curves(results.curves, out_dir / CURVES_PNG)
    sanity_png = plot_sanity(results.sanity, out_dir / SANITY_PNG)
    figures = tuple(Path(p) for p in (extra_images or {}).values() if p is not None)
    if console:
        paths = [out_dir / RESULTS_MD, *(p for p in (curves_png, sanity_png) if p is not None), *figures]
        print_leaderboard(board, paths)
    images = {"curves": curves_png, "sanity": sanity_png, **(extra_images or {})}
    logged = log_results(frame, images, config) if wandb else False
    log.info("wrote %s and %s (%d rows)", out_dir / RESULTS_CSV, RESULTS_MD, len(frame))
    return ReportFiles(
        out_dir / RESULTS_CSV,
        out_dir / RESULTS_MD,
        raw["records"],
        raw["curves"],
        curves_png,
        sanity_png,
        logged,
        board,
        figures,
    )


__all__ = [
    "DEFAULT_HEADLINE",
    "Leaderboard",
    "NO_METHOD",
    "Curve",
    "EvalResults",
    "Record",
    "ReportFiles",
    "SanityCurve",
    "aggregate",
    "build_leaderboard",
    "headline_config",
    "write_report",
]
