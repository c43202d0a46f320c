"""build_report (what scripts/report.py calls) over fake finished run dirs: grouping by overrides, pooling,
tables and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganmex.report.records import EvalResults
from ganmex.report.runs import build_report, parse_overrides
from ganmex.report.tables import aggregate, summary_stats, write_results_csv


def _fake_run(path: Path, overrides: list[str], values: dict[str, list[float]], decay: float) -> None:
    """A run dir as the evaluation stage leaves it: results.csv, records.jsonl, curves.json, overrides."""
    results = EvalResults()
    for baseline, vs in values.items():
        results.add("ig", baseline, "deletion_auc", vs, higher_is_better=False)
        fractions = np.linspace(0, 1, 5)
        results.add_curve("deletion", "ig", baseline, fractions, np.exp(-decay * fractions), n=len(vs))
        results.add_sanity("ig", baseline, ["fc", "conv"], [0.5, decay / 10], n=len(vs))
    path.mkdir(parents=True)
    results.save(path)
    write_results_csv(aggregate(results.records), path / "results.csv")
    (path / ".hydra").mkdir()
    (path / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun"
    _fake_run(
        root / "0",
        ["gan=stargan", "gan.loss.lambda_cls=1", "seed=0"],
        {"zero": [0.5, 0.6], "ganmex": [0.3, 0.2]},
        decay=2.0,
    )
    _fake_run(
        root / "1",
        ["gan=stargan", "gan.loss.lambda_cls=10", "seed=0"],
        {"zero": [0.5, 0.7, 0.6], "ganmex": [0.1, 0.2, 0.4]},
        decay=4.0,
    )
    _fake_run(
        root / "2",
        ["gan=stargan", "gan.loss.lambda_cls=10", "seed=1"],
        {"zero": [0.4], "ganmex": [0.3, 0.1]},
        decay=6.0,
    )
    return root


def test_report_groups_by_overrides_and_pools_seeds(sweep, capsys):
    out = sweep / "report"
    build_report(sweep, None, ["seed"], "baseline", console=True)
    frame = pd.read_csv(out / "comparison.csv")
    assert list(frame.columns[:2]) == ["group", "gan.loss.lambda_cls"]
    assert sorted(set(frame["group"])) == ["gan.loss.lambda_cls=1", "gan.loss.lambda_cls=10"]
    cell = frame[(frame["group"] == "gan.loss.lambda_cls=10") & (frame["baseline"] == "ganmex")].iloc[0]
    direct = summary_stats([0.1, 0.2, 0.4, 0.3, 0.1])  # runs 1 and 2 pooled, per example
    assert cell["n"] == 5 and cell["n_runs"] == 2
    for column in ("mean", "std", "ci_low", "ci_high"):
        assert cell[column] == pytest.approx(direct[column])
    markdown = (out / "comparison.md").read_text()
    assert "| gan.loss.lambda_cls=1 | ig | 0.55 ± 0.64 | **0.25 ± 0.64** |" in markdown
    for png in ("curves.png", "sanity.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "gan.loss.lambda_cls=10" in capsys.readouterr().out


def test_without_pooling_each_run_is_its_own_group_and_groups_can_be_columns(sweep, tmp_path):
    out = tmp_path / "elsewhere"
    build_report(sweep, out, [], "group", console=False)
    frame = pd.read_csv(out / "comparison.csv")
    assert set(frame["group"]) == {
        "gan.loss.lambda_cls=1,seed=0",
        "gan.loss.lambda_cls=10,seed=0",
        "gan.loss.lambda_cls=10,seed=1",
    }
    assert (frame["n_runs"] == 1).all()
    header = next(
        line for line in (out / "comparison.md").read_text().splitlines() if line.startswith("| method")
    )
    assert header == (
        "| method | baseline | gan.loss.lambda_cls=1,seed=0 | gan.loss.lambda_cls=10,seed=0 "
        "| gan.loss.lambda_cls=10,seed=1 |"
    )


def test_empty_folder_fails_with_a_clear_message(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="no results.csv under"):
        build_report(tmp_path, None, [], "baseline", console=False)
    with pytest.raises((FileNotFoundError, ValueError), match="does not exist"):
        build_report(tmp_path / "missing", None, [], "baseline", console=False)


def test_parse_overrides_handles_hydra_prefixes():
    assert parse_overrides(["a=1", "+b.c=x", "++d=[1,2]", "~e"]) == {
        "a": "1",
        "b.c": "x",
        "d": "[1,2]",
        "e": "<deleted>",
    }
    with pytest.raises(ValueError, match="'oops' is not of the form key=value"):
        parse_overrides(["oops"])
