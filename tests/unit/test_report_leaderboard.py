"""Paired statistics (Wilcoxon vs scipy, Holm vs hand values), the leaderboard's ranking and marks, and
directions carried from the metric classes into the records."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

from ganmex.report.console import print_leaderboard
from ganmex.report.leaderboard import (
    build_leaderboard,
    headline_metrics,
    leaderboard_lines,
    leaderboard_markdown,
)
from ganmex.report.records import EvalResults, Record
from ganmex.report.stats import holm, pairwise_tests, signed_rank_sum, wilcoxon_p


def test_holm_matches_hand_computed_step_down_values():
    # sorted 0.01, 0.02, 0.03, 0.5 -> 4*0.01, 3*0.02, max(0.06, 2*0.03), max(0.06, 1*0.5)
    assert holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.4, 0.9]) == pytest.approx([0.8, 0.9])
    assert holm([0.6, float("nan")]) == pytest.approx([1.0, 1.0])  # capped; NaN counts as 1


def test_wilcoxon_is_scipys_and_equal_pairs_give_one():
    x = np.array([1.0, 2.5, 3.1, 4.7, 5.2, 6.9, 7.0, 8.8])
    y = np.array([0.5, 2.0, 3.9, 3.2, 4.0, 5.1, 6.2, 7.0])
    assert wilcoxon_p(x, y) == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert wilcoxon_p(x, x.copy()) == 1.0
    # differences 0.5, 0.5, -0.8, 1.5, 1.2, 1.8, 0.8, 1.8: ranks of |d| 1.5 1.5 3.5 6 5 7.5 3.5 7.5
    assert signed_rank_sum(x - y) == pytest.approx(36 - 2 * 3.5)


def test_pairwise_tests_pair_by_example_id_and_holm_correct_the_family():
    rng = np.random.default_rng(0)
    base = rng.normal(size=12)
    a = {i: v for i, v in enumerate(base)}
    b = {i: v + 1.0 + 0.1 * rng.normal() for i, v in enumerate(base)}  # b consistently higher
    c = {i: v + 0.01 * (-1) ** i for i, v in enumerate(base)}
    c[99] = 5.0  # an example only c has: not paired
    tests = pairwise_tests({"a": a, "b": b, "c": c}, higher_is_better=True)
    raw_ab = stats.wilcoxon(list(a.values()), list(b.values())).pvalue
    raw_ac = stats.wilcoxon(list(a.values()), [c[i] for i in range(12)]).pvalue
    raw_bc = stats.wilcoxon(list(b.values()), [c[i] for i in range(12)]).pvalue
    assert [tests[("a", "b")][0], tests[("a", "c")][0], tests[("b", "c")][0]] == pytest.approx(
        holm([raw_ab, raw_ac, raw_bc])
    )
    assert tests[("b", "a")][1] == 1 and tests[("a", "b")][1] == -1  # b better when higher is better
    lower = pairwise_tests({"a": a, "b": b}, higher_is_better=False)
    assert lower[("a", "b")][1] == 1


def _records(metric: str, higher: bool | None, by_baseline: dict[str, list[float]], method: str = "ig"):
    return [
        Record(method, b, metric, v, i, higher)
        for b, values in by_baseline.items()
        for i, v in enumerate(values)
    ]


def _known_table(higher: bool) -> list[Record]:
    n = 10
    offsets = np.linspace(-0.2, 0.2, n)
    # three baselines far apart on every image: ranks certain, every paired test maximally significant
    records = _records(
        "deletion_auc_raw@road", higher, {"good": 1 + offsets, "mid": 2 + offsets, "bad": 3 + offsets}
    )
    records += _records(
        "flip_fraction@road", higher, {"good": 1 + offsets, "mid": 2.5 + offsets, "bad": 2 + offsets}
    )
    records += _records(
        "gini", True, {"good": 9 + offsets, "mid": 0 + offsets, "bad": 0 + offsets}
    )  # not headline
    return records


def test_leaderboard_ranks_by_mean_rank_over_headline_metrics():
    board = build_leaderboard(_known_table(higher=False))
    (method,) = board.boards
    assert method.metrics == ["deletion_auc_raw@road", "flip_fraction@road"]
    # lower is better: good 1+1, mid 2+3, bad 3+2 -> mean ranks 1, 2.5, 2.5 (tie kept in first-seen order)
    assert [(e.baseline, e.mean_rank) for e in method.entries] == [("good", 1.0), ("mid", 2.5), ("bad", 2.5)]
    good, mid, _ = method.entries
    # n=10 all-positive differences: exact two-sided p = 2/1024, times 3 pairs (Holm) < 0.05
    assert good.best_significant == {"deletion_auc_raw@road": True, "flip_fraction@road": True}
    assert (good.better_than_next, good.worse_than_next) == (2, 0) and good.marked
    assert (mid.better_than_next, mid.worse_than_next) == (1, 1) and not mid.marked


def test_a_metric_whose_records_say_higher_is_better_ranks_reversed():
    board = build_leaderboard(_known_table(higher=True))
    # higher is better: bad 1+2, mid 2+1, good 3+3
    assert [(e.baseline, e.mean_rank) for e in board.boards[0].entries] == [
        ("mid", 1.5),
        ("bad", 1.5),
        ("good", 3.0),
    ]


def test_metrics_without_direction_and_single_baseline_methods_are_not_ranked():
    records = _records("deletion_auc@road", None, {"a": [1.0, 2.0], "b": [2.0, 3.0]})
    records += _records("deletion_auc_raw@blur", False, {"none": [1.0, 2.0]}, method="saliency")
    board = build_leaderboard(records)
    assert board.boards == []
    assert "no headline metric" in board.skipped["ig"] and "one baseline" in board.skipped["saliency"]


def test_headline_patterns_match_globs_in_pattern_order():
    names = ["gini", "flip_fraction@blur", "deletion_auc_raw@road", "deletion_auc@blur", "pointing_game"]
    assert headline_metrics(names, ["deletion_auc_raw@*", "pointing_game", "absent"]) == [
        "deletion_auc_raw@road",
        "pointing_game",
    ]
    assert headline_metrics(names, ["*@blur"]) == ["flip_fraction@blur", "deletion_auc@blur"]


def test_markdown_text_and_terminal_show_the_same_order_within_100_columns(tmp_path):
    board = build_leaderboard(_known_table(higher=False))
    markdown = leaderboard_markdown(board)
    assert "| 1 | good* | 1.00 | +2/-0 | 1* | 1* |" in markdown
    assert leaderboard_lines(board)[0] == "ig: 1. good* (1.00)  2. mid (2.50)  3. bad (2.50)"
    console = Console(record=True, width=100)
    print_leaderboard(board, [tmp_path / "results.md", None], console=console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text.index("good*") < text.index("mid") < text.index("bad")
    assert text.rstrip().endswith(str(tmp_path / "results.md"))


def test_directions_survive_save_and_load(tmp_path):
    results = EvalResults()
    results.add("ig", "zero", "gini", [0.1, 0.2], higher_is_better=True)
    results.add("ig", "zero", "mystery", [0.3])
    results.save(tmp_path)
    back = EvalResults.load(tmp_path)
    assert [r.higher_is_better for r in back.records] == [True, True, None]
    with pytest.raises(ValueError, match="must be True, False or None"):
        Record("ig", "zero", "gini", 0.1, 0, "yes")


def test_write_report_opens_results_md_with_the_leaderboard_and_summarises_it(tmp_path):
    from ganmex.report import write_report
    from ganmex.report.run_summary import format_run_summary

    results = EvalResults(records=_known_table(higher=False))
    config = {"evaluation": {"headline_metrics": ["flip_fraction@*"], "headline_alpha": 0.01}}
    files = write_report(results, tmp_path, config=config, console=False, wandb=False)
    markdown = files.results_md.read_text()
    assert markdown.index("## Leaderboard") < markdown.index("## All metrics")
    assert "| # | baseline | mean rank | vs next | flip_fraction@road ↓ |" in markdown
    assert files.leaderboard.alpha == 0.01
    assert [e.baseline for e in files.leaderboard.boards[0].entries] == ["good", "bad", "mid"]
    summary = files.summary()
    assert summary["leaderboard"][0] == "ig: 1. good* (1.00)  2. bad* (2.00)  3. mid (3.00)"
    assert summary["outputs"]["results"] == str(tmp_path / "results.md")
    lines = format_run_summary({"stages": {"evaluate": {"wall_time_s": 1.0, "metrics": summary}}})
    assert "  ig: 1. good* (1.00)  2. bad* (2.00)  3. mid (3.00)" in lines


def test_bad_headline_config_is_a_clear_error(tmp_path):
    from ganmex.report import headline_config

    with pytest.raises(
        ValueError, match="evaluation.headline_metrics='deletion_auc_raw@blur' must be a list"
    ):
        headline_config({"evaluation": {"headline_metrics": "deletion_auc_raw@blur"}})
    assert headline_config(None) == (None, 0.05)
