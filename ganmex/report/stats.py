"""Paired comparisons of baselines: every baseline explains the same test images, so their per-example
values are compared pairwise (Wilcoxon signed-rank on the examples both have a finite value for) and the
p-values of one family (one method x metric, all baseline pairs) are Holm-corrected."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

import numpy as np
from scipy import stats

from ganmex.report.records import Record

# fewest finite pairs with a non-zero difference a test is run on; below it the p-value is 1 (no evidence)
MIN_PAIRS = 1


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN counts as 1."""
    p = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_values(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The values of the examples present and finite in both (sorted by example id)."""
    shared = sorted(k for k in a.keys() & b.keys() if math.isfinite(a[k]) and math.isfinite(b[k]))
    return np.array([a[k] for k in shared], dtype=np.float64), np.array(
        [b[k] for k in shared], dtype=np.float64
    )


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences x - y; 1.0 when all are zero."""
    differences = x - y
    if int(np.count_nonzero(differences)) < MIN_PAIRS:
        return 1.0
    return float(stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided").pvalue)


def signed_rank_sum(differences: np.ndarray) -> float:
    """R+ - R-: the sum of the signed ranks of the non-zero |differences| (Wilcoxon's statistic)."""
    nonzero = differences[differences != 0]
    if not len(nonzero):
        return 0.0
    return float((np.sign(nonzero) * stats.rankdata(np.abs(nonzero))).sum())


def per_example(records: Iterable[Record]) -> dict[tuple[str, str, str], dict[int, float]]:
    """(method, baseline, metric) -> {example id: value}; records without an id are numbered in order."""
    out: dict[tuple[str, str, str], dict[int, float]] = {}
    for record in records:
        values = out.setdefault((record.method, record.baseline, record.metric), {})
        values[record.example if record.example is not None else len(values)] = record.value
    return out


def pairwise_tests(
    values: Mapping[str, Mapping[int, float]], higher_is_better: bool
) -> dict[tuple[str, str], tuple[float, int]]:
    """(a, b) -> (Holm-adjusted p, sign) for every ordered pair of baselines of one method x metric.

    sign is +1 when a is better than b (the signed-rank sum of a - b favours a), -1 when worse, 0 if even.
    """
    baselines = list(values)
    pairs = list(combinations(baselines, 2))
    raw, signs = [], []
    for a, b in pairs:
        x, y = paired_values(values[a], values[b])
        raw.append(wilcoxon_p(x, y) if len(x) else 1.0)
        rank_sum = signed_rank_sum(x - y)
        signs.append(int(np.sign(rank_sum if higher_is_better else -rank_sum)))
    adjusted = holm(raw)
    out: dict[tuple[str, str], tuple[float, int]] = {}
    for (a, b), p, sign in zip(pairs, adjusted, signs, strict=True):
        out[(a, b)] = (p, sign)
        out[(b, a)] = (p, -sign)
    return out
