"""Aggregation numbers vs hand-computed statistics, pooling, directions and the bold best cell."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ganmex.report.records import EvalResults, Record
from ganmex.report.tables import (
    COLUMNS,
    aggregate,
    as_direction,
    best_flags,
    frame_directions,
    markdown_pivot,
    pool,
    read_results_csv,
    record_directions,
    results_markdown,
    summary_stats,
    write_results_csv,
)

T_975_DF3 = 3.182446305284263  # Student-t 97.5% quantile, 3 degrees of freedom (printed tables)
T_975_DF1 = 12.706204736174707


def test_summary_stats_match_hand_computed_values():
    s = summary_stats([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)  # sample std, ddof=1
    half = T_975_DF3 * std / 2.0  # t * s / sqrt(4)
    assert s["mean"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(std) and std == pytest.approx(1.2909944)
    assert s["ci_low"] == pytest.approx(2.5 - half) and s["ci_high"] == pytest.approx(2.5 + half)
    assert s["n"] == 4 and s["n_nonfinite"] == 0 and s["ci_level"] == 0.95


def test_two_values_use_the_wide_t_interval_and_one_value_has_none():
    s = summary_stats([0.0, 2.0])
    assert s["ci_high"] - s["mean"] == pytest.approx(T_975_DF1 * math.sqrt(2.0) / math.sqrt(2.0))
    single = summary_stats([0.7])
    assert single["mean"] == 0.7 and single["n"] == 1
    assert math.isnan(single["std"]) and math.isnan(single["ci_low"]) and math.isnan(single["ci_high"])


def test_non_finite_values_are_dropped_and_counted():
    s = summary_stats([1.0, float("nan"), 3.0, float("inf")])
    assert s["mean"] == 2.0 and s["n"] == 2 and s["n_nonfinite"] == 2


def test_bad_confidence_is_rejected():
    with pytest.raises(ValueError, match="confidence=95"):
        summary_stats([1.0, 2.0], confidence=95)


def test_aggregate_one_row_per_cell_in_first_seen_order():
    results = EvalResults()
    results.declare("deletion_auc", False)
    results.add("ig", "zero", "deletion_auc", [0.2, 0.4])
    results.add("ig", "ganmex", "deletion_auc", np.array([0.1, 0.1, 0.4]))
    results.add("ig", "zero", "gini", 0.5, higher_is_better=True)
    frame = aggregate(results.records)
    assert list(frame.columns) == list(COLUMNS)
    assert list(zip(frame.method, frame.baseline, frame.metric, strict=True)) == [
        ("ig", "zero", "deletion_auc"),
        ("ig", "ganmex", "deletion_auc"),
        ("ig", "zero", "gini"),
    ]
    assert frame["mean"].tolist() == pytest.approx([0.3, 0.2, 0.5])
    assert frame["n"].tolist() == [2, 3, 1]
    assert frame["higher_is_better"].tolist() == [False, False, True]


def test_pool_equals_aggregating_the_concatenated_values():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=7), rng.normal(1.0, 2.0, size=12), np.array([5.0])
    parts = [aggregate([Record("ig", "zero", "aopc", v) for v in values]) for values in (a, b, c)]
    pooled = pool(pd.concat(parts, ignore_index=True), ["method", "baseline", "metric"])
    direct = summary_stats(np.concatenate([a, b, c]))
    row = pooled.iloc[0]
    for column in ("mean", "std", "ci_low", "ci_high"):
        assert row[column] == pytest.approx(direct[column], rel=1e-12)
    assert row["n"] == 20 and row["n_runs"] == 3


def test_direction_comes_from_the_records_not_the_name():
    records = [
        Record("ig", "zero", "deletion_auc", 0.1, 0, True),
        Record("ig", "blur", "deletion_auc", 0.2, 0),
    ]
    records.append(Record("ig", "zero", "mystery", 1.0, 0))
    assert record_directions(records) == {"deletion_auc": True, "mystery": None}
    frame = aggregate(records)
    assert frame["higher_is_better"].tolist() == [True, True, None]
    assert frame_directions(frame) == {"deletion_auc": True, "mystery": None}


def test_records_disagreeing_on_a_direction_are_rejected():
    records = [Record("ig", "zero", "gini", 0.1, 0, True), Record("ig", "blur", "gini", 0.2, 0, False)]
    with pytest.raises(ValueError, match="'gini' disagree on higher_is_better"):
        aggregate(records)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [(True, True), (np.bool_(False), False), ("True", True), ("false", False), ("", None), (math.nan, None)],
)
def test_direction_cells_read_back_from_csv(cell, expected):
    assert as_direction(cell) is expected


def test_best_flags_follow_direction_and_ignore_nan():
    means = [0.3, float("nan"), 0.1, 0.5, 0.1]
    assert best_flags(means, True) == [False, False, False, True, False]
    assert best_flags(means, False) == [False, False, True, False, True]  # ties all bold
    assert best_flags(means, None) == [False] * 5


def _frame(metric: str, values: dict[str, list[float]], higher: bool | None = None) -> pd.DataFrame:
    return aggregate(
        [Record("ig", b, metric, v, i, higher) for b, vs in values.items() for i, v in enumerate(vs)]
    )


def _cells(markdown: str, row: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {row} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_bold_marks_the_lowest_value_when_lower_is_better():
    frame = _frame("deletion_auc", {"zero": [0.5, 0.7], "blur": [0.2, 0.4], "ganmex": [0.3, 0.5]}, False)
    cells = _cells(markdown_pivot(frame), "ig")
    assert [c.startswith("**") for c in cells] == [False, True, False]
    half = T_975_DF1 * math.sqrt(0.02) / math.sqrt(2)
    assert cells[1] == f"**0.3 ± {half:.2g}**"


def test_bold_marks_the_highest_value_when_higher_is_better():
    frame = _frame("insertion_auc", {"zero": [0.5, 0.7], "blur": [0.2, 0.4], "ganmex": [0.3, 0.5]}, True)
    cells = _cells(markdown_pivot(frame), "ig")
    assert [c.startswith("**") for c in cells] == [True, False, False]


def test_unknown_metric_is_shown_without_bold():
    markdown = markdown_pivot(_frame("mystery_score", {"zero": [1.0, 2.0], "blur": [3.0, 4.0]}))
    assert "### mystery_score (direction unknown)" in markdown
    assert "**" not in "\n".join(line for line in markdown.splitlines() if line.startswith("| ig"))


def test_method_layout_bolds_per_metric_row_and_marks_missing_cells():
    records = [
        Record("ig", "zero", "gini", 0.9, 0, True),
        Record("ig", "blur", "gini", 0.1, 0, True),
        Record("ig", "zero", "infidelity", 0.9, 0, False),
        Record("ig", "blur", "infidelity", 0.1, 0, False),
        Record("ig", "zero", "validity", 0.4, 0, True),
    ]
    markdown = results_markdown(aggregate(records), layout="method")
    assert "### method = ig" in markdown
    assert _cells(markdown, "gini ↑") == ["**0.9**", "0.1"]
    assert _cells(markdown, "infidelity ↓") == ["0.9", "**0.1**"]
    assert _cells(markdown, "validity ↑") == ["**0.4**", "—"]
    with pytest.raises(ValueError, match="layout='baseline'"):
        results_markdown(aggregate(records), layout="baseline")


def test_results_csv_round_trip_keeps_columns_and_numbers(tmp_path):
    frame = _frame("aopc", {"zero": [0.1, 0.2, 0.6], "mdts": [0.4]}, True)
    write_results_csv(frame, tmp_path / "results.csv")
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert header == "method,baseline,metric,mean,std,ci_low,ci_high,ci_level,n,n_nonfinite,higher_is_better"
    back = read_results_csv(tmp_path / "results.csv")
    assert back["mean"].tolist() == pytest.approx(frame["mean"].tolist(), rel=1e-15)
    assert math.isnan(back["std"].iloc[1]) and back["n"].tolist() == [3, 1]
    assert frame_directions(back) == {"aopc": True}
    assert not list(tmp_path.glob(".*.tmp"))


def test_metric_pivots_keep_the_chosen_metrics_and_name_what_is_there():
    from ganmex.report.tables import metric_pivots

    frame = pd.DataFrame(
        {
            "method": ["ig", "ig"],
            "baseline": ["zero", "ganmex"],
            "metric": ["deletion_auc", "gini"],
            "mean": [0.4, 0.6],
            "std": [0.1, 0.1],
            "ci_low": [0.3, 0.5],
            "ci_high": [0.5, 0.7],
            "n": [3, 3],
            "higher_is_better": [False, True],
        }
    )
    text = metric_pivots(frame, ["deletion_auc"])
    assert "### deletion_auc (lower is better)" in text and "gini" not in text
    with pytest.raises(
        ValueError, match=r"none of \['aopc'\] in run.csv; available: \['deletion_auc', 'gini'\]"
    ):
        metric_pivots(frame, ["aopc"], "run.csv")
