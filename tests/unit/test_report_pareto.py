"""The Pareto front of compared runs (scripts/report.py's `front` column): dominance on a hand-made table,
and the table build_report writes from a gan_quality multirun."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ganmex.report.pareto import pareto_front, pareto_table
from ganmex.report.records import EvalResults
from ganmex.report.runs import build_report
from ganmex.report.tables import aggregate, write_results_csv

DIRECTIONS = {"validity": True, "oracle_validity": True, "proximity_l1": False, "fid": False}


def test_front_keeps_exactly_the_rows_no_other_row_dominates():
    table = pd.DataFrame(
        {
            "group": ["a", "b", "c", "d", "e", "f"],
            "validity": [0.9, 0.8, 0.9, 0.95, 0.9, 0.9],
            "oracle_validity": [0.8, 0.8, 0.7, 0.6, 0.8, 0.8],
            "proximity_l1": [0.10, 0.12, 0.09, 0.20, 0.10, math.nan],
            "fid": [5.0, 5.0, 5.0, 9.0, 5.0, 1.0],
        }
    )
    front = pareto_front(table, DIRECTIONS)
    # b: a is as good everywhere and better on validity and L1; a and e are equal, so neither beats the
    # other; c trades oracle validity for L1; d has the highest validity; f's missing L1 loses that
    # column, but its FID is the best
    assert front.tolist() == [True, False, True, True, True, True]
    assert front.name == "front"


def test_missing_value_never_wins_a_column():
    table = pd.DataFrame({"validity": [0.9, 0.9], "fid": [math.nan, 3.0]})
    assert pareto_front(table, {"validity": True, "fid": False}).tolist() == [False, True]


def test_front_names_a_missing_column():
    with pytest.raises(KeyError, match=r"\['fid'\] are not in the table"):
        pareto_front(pd.DataFrame({"validity": [1.0]}), {"validity": True, "fid": False})


def _gan_quality_run(path: Path, preset: str, seed: int, values: dict[str, float]) -> None:
    """A finished `mode=gan_quality` run dir: counterfactual records (method `-`) and its overrides."""
    results = EvalResults()
    for metric, value in values.items():
        results.add("-", "ganmex", metric, [value, value], higher_is_better=DIRECTIONS[metric])
    path.mkdir(parents=True)
    write_results_csv(aggregate(results.records), path / "results.csv")
    (path / ".hydra").mkdir()
    (path / ".hydra" / "overrides.yaml").write_text(f"- experiment=gan_pareto/{preset}\n- seed={seed}\n")


def test_report_of_a_pareto_multirun_marks_the_front(tmp_path, capsys):
    root = tmp_path / "multirun"
    rows = {
        "default": {"validity": 0.9, "oracle_validity": 0.8, "proximity_l1": 0.05, "fid": 4.0},
        "direct": {"validity": 0.95, "oracle_validity": 0.7, "proximity_l1": 0.10, "fid": 6.0},
        "ema": {"validity": 0.85, "oracle_validity": 0.8, "proximity_l1": 0.06, "fid": 4.0},
    }
    for i, (preset, values) in enumerate(rows.items()):
        for seed in (0, 1):
            _gan_quality_run(root / f"{i}_{seed}", preset, seed, values)
    files = build_report(root, None, ["seed"], "group", console=True)
    table = pd.read_csv(files["pareto"])
    assert list(table.columns) == ["group", "method", "baseline", *DIRECTIONS, "front"]
    front = dict(zip(table["group"], table["front"], strict=True))
    assert front == {
        "experiment=gan_pareto/default": True,
        "experiment=gan_pareto/direct": True,  # the highest validity, bought with L1 and FID
        "experiment=gan_pareto/ema": False,  # default is as good everywhere and better on two
    }
    assert "## Pareto front" in (root / "report" / "comparison.md").read_text()
    assert (
        "| experiment=gan_pareto/default | - | ganmex | 0.9 | 0.8 | 0.05 | 4 | yes |"
        in capsys.readouterr().out
    )


def test_no_pareto_table_without_counterfactual_quantities():
    frame = pd.DataFrame(
        {"group": ["a"], "method": ["ig"], "baseline": ["zero"], "metric": ["deletion_auc"], "mean": [0.3]}
    )
    assert pareto_table(frame) is None
