"""One verdict per attribution method: its baselines ranked by mean rank over the headline metrics.

Headline metrics (`evaluation.headline_metrics`, glob patterns) default to measures that compare baselines
on one scale: raw-score deletion AUC against ROAD, the reference no baseline shares (`@road`), its exact flip
fraction, and the localisation measures when the dataset has ground truth. Per method and headline
metric the baselines are ranked by mean (1 = best, ties share the average rank); the leaderboard orders
them by the mean of those ranks.

Significance (paired, since all baselines explain the same images): per method x metric, every pair of
baselines gets a two-sided Wilcoxon signed-rank test on the examples both have finite values for, and the
family's p-values are Holm-corrected. A metric cell is marked `*` when that baseline is significantly better
(adjusted p < alpha) than every other baseline on it. `vs next` counts the headline metrics on which a
baseline is significantly better (+) / worse (-) than the baseline ranked just below it; its name is marked
`*` when its lead over the next is significant on at least one headline metric and reversed on none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
from scipy import stats

from ganmex.report.records import NO_METHOD, Record
from ganmex.report.stats import pairwise_tests, per_example
from ganmex.report.tables import record_directions

# the one headline-metric list (evaluation.headline_metrics=null uses it; docs/report.md quotes it, and
# tests/unit/test_docs_headline.py checks that): deletion against ROAD, the reference no baseline shares,
# its exact flip fraction, and with ground truth (decoy_mnist) the localisation measures
DEFAULT_HEADLINE: tuple[str, ...] = (
    "deletion_auc_raw@road",
    "flip_fraction@road",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "pointing_game",
    "localisation_auc",
)
DEFAULT_ALPHA = 0.05
MARK = "*"


@dataclass(frozen=True)
class Entry:
    """One baseline's place in a method's leaderboard."""

    baseline: str
    mean_rank: float
    means: dict[str, float]
    ranks: dict[str, float]
    best_significant: dict[str, bool]  # metric -> significantly better than every other baseline
    better_than_next: int = 0  # headline metrics where significantly better than the next-ranked baseline
    worse_than_next: int = 0

    @property
    def marked(self) -> bool:
        return self.better_than_next > 0 and self.worse_than_next == 0


@dataclass(frozen=True)
class MethodBoard:
    method: str
    metrics: list[str]
    directions: dict[str, bool]
    entries: list[Entry]
    n_examples: int


@dataclass(frozen=True)
class Leaderboard:
    boards: list[MethodBoard]
    headline: tuple[str, ...]
    alpha: float
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it has no leaderboard


def headline_metrics(available: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The available metric names matching any pattern, in pattern order then first-seen order."""
    names = list(dict.fromkeys(available))
    chosen: list[str] = []
    for pattern in patterns:
        chosen += [n for n in names if fnmatchcase(n, pattern) and n not in chosen]
    return chosen


def build_leaderboard(
    records: Sequence[Record],
    headline: Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Leaderboard:
    """Rank each method's baselines over the headline metrics, with paired Holm-corrected tests."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must lie in (0, 1), e.g. 0.05")
    patterns = tuple(DEFAULT_HEADLINE if headline is None else headline)
    directions = record_directions(records)
    values = per_example(records)
    methods = [m for m in dict.fromkeys(r.method for r in records) if m != NO_METHOD]
    boards, skipped = [], {}
    for method in methods:
        baselines = list(dict.fromkeys(b for (m, b, _) in values if m == method))
        measured = [k for (m, _, k) in values if m == method]
        metrics = [
            name
            for name in headline_metrics(measured, patterns)
            if directions.get(name) is not None and sum((method, b, name) in values for b in baselines) >= 2
        ]
        if len(baselines) < 2:
            skipped[method] = f"one baseline ({baselines[0]}): nothing to rank"
        elif not metrics:
            skipped[method] = f"no headline metric measured (evaluation.headline_metrics={list(patterns)})"
        else:
            boards.append(_method_board(method, baselines, metrics, directions, values, alpha))
    return Leaderboard(boards, patterns, alpha, skipped)


def _method_board(method, baselines, metrics, directions, values, alpha) -> MethodBoard:
    means: dict[str, dict[str, float]] = {b: {} for b in baselines}
    ranks: dict[str, dict[str, float]] = {b: {} for b in baselines}
    best: dict[str, dict[str, bool]] = {b: {} for b in baselines}
    tests = {}
    for metric in metrics:
        higher = bool(directions[metric])
        present = {b: values[(method, b, metric)] for b in baselines if (method, b, metric) in values}
        for b, by_example in present.items():
            finite = [v for v in by_example.values() if math.isfinite(v)]
            means[b][metric] = float(np.mean(finite)) if finite else math.nan
        ranked = [b for b in present if math.isfinite(means[b][metric])]
        if ranked:
            keys = [-means[b][metric] if higher else means[b][metric] for b in ranked]
            for b, rank in zip(ranked, stats.rankdata(keys), strict=True):
                ranks[b][metric] = float(rank)
        tests[metric] = pairwise_tests(present, higher)
        for b in present:
            others = [o for o in present if o != b]
            best[b][metric] = bool(others) and all(
                tests[metric][(b, o)][0] < alpha and tests[metric][(b, o)][1] > 0 for o in others
            )
    mean_rank = {b: float(np.mean(list(ranks[b].values()))) if ranks[b] else math.nan for b in baselines}
    order = sorted(baselines, key=lambda b: (math.isnan(mean_rank[b]), mean_rank[b], baselines.index(b)))
    entries = []
    for position, b in enumerate(order):
        better = worse = 0
        if position + 1 < len(order):
            following = order[position + 1]
            for metric in metrics:
                p, sign = tests[metric].get((b, following), (1.0, 0))
                better += int(p < alpha and sign > 0)
                worse += int(p < alpha and sign < 0)
        entries.append(Entry(b, mean_rank[b], means[b], ranks[b], best[b], better, worse))
    n = max(len(values[(method, b, m)]) for b in baselines for m in metrics if (method, b, m) in values)
    return MethodBoard(method, metrics, {m: bool(directions[m]) for m in metrics}, entries, n)


def _arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _value(entry: Entry, metric: str, digits: int = 3) -> str:
    mean = entry.means.get(metric, math.nan)
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}g}{MARK if entry.best_significant.get(metric) else ''}"


def _name(entry: Entry) -> str:
    return entry.baseline + (MARK if entry.marked else "")


def _vs_next(entry: Entry, last: bool) -> str:
    return "" if last else f"+{entry.better_than_next}/-{entry.worse_than_next}"


def leaderboard_markdown(board: Leaderboard) -> str:
    """The leaderboard section that opens results.md: one table per method."""
    out = [
        "## Leaderboard",
        "",
        f"Per method, baselines ranked by their mean rank over the headline metrics "
        f"({', '.join(f'`{p}`' for p in board.headline)}; those measured are the columns). "
        f"Paired two-sided Wilcoxon signed-rank tests over the same images, Holm-corrected over all baseline "
        f"pairs of a method x metric, at alpha = {board.alpha:g}. `{MARK}` on a value: that baseline is "
        f"significantly better than every other baseline on the metric. `vs next` = headline metrics on "
        f"which it is significantly better (+) / worse (-) than the baseline ranked below it; `{MARK}` on a "
        f"name: its lead over the next is significant on at least one metric and reversed on none.",
        "",
    ]
    for method in board.boards:
        out.append(f"### {method.method} (n = {method.n_examples} images)")
        out.append("")
        header = ["#", "baseline", "mean rank", "vs next"]
        header += [f"{m} {_arrow(method.directions[m])}" for m in method.metrics]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] * len(header)) + "|")
        for i, entry in enumerate(method.entries):
            cells = [
                str(i + 1),
                _name(entry),
                f"{entry.mean_rank:.2f}",
                _vs_next(entry, i + 1 == len(method.entries)),
            ]
            cells += [_value(entry, m) for m in method.metrics]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    for method, why in board.skipped.items():
        out.append(f"- {method}: not ranked, {why}")
    if board.skipped:
        out.append("")
    return "\n".join(out)


def leaderboard_lines(board: Leaderboard) -> list[str]:
    """Plain text, one line per method (for logs and metrics.json summaries)."""
    lines = []
    for method in board.boards:
        ranked = "  ".join(f"{i + 1}. {_name(e)} ({e.mean_rank:.2f})" for i, e in enumerate(method.entries))
        lines.append(f"{method.method}: {ranked}")
    if board.boards:
        metrics = dict.fromkeys(m for method in board.boards for m in method.metrics)
        lines.append(
            f"mean rank over {', '.join(metrics)}; {MARK} = significantly better than the "
            f"next (paired Wilcoxon, Holm, alpha={board.alpha:g})"
        )
    return lines


def leaderboard_summary(board: Leaderboard) -> dict[str, list[str]]:
    """method -> baselines best first (a JSON-friendly verdict)."""
    return {m.method: [e.baseline for e in m.entries] for m in board.boards}
