"""docs/results.md is written from run directories: commands, leaderboards and pivots, nothing typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganmex.report.records import EvalResults
from ganmex.report.results_page import SECTIONS, Section, results_page
from ganmex.report.tables import aggregate, write_results_csv


def _run(path: Path) -> Path:
    results = EvalResults()
    results.add("ig", "ganmex", "flip_fraction@road", [0.1, 0.2, 0.1], higher_is_better=False)
    results.add("ig", "zero", "flip_fraction@road", [0.3, 0.4, 0.5], higher_is_better=False)
    results.add("-", "ganmex", "validity", [1.0, 1.0, 0.0], higher_is_better=True)
    results.save(path)
    write_results_csv(aggregate(results.records), path / "results.csv")
    return path


def test_the_page_holds_each_runs_command_leaderboard_and_tables(tmp_path):
    run = _run(tmp_path / "run")
    page = results_page(
        [Section("Real digits", "python evaluate.py", run, ("flip_fraction@road", "validity"))]
    )
    assert page.startswith("# Results:") and "## Real digits" in page and "python evaluate.py" in page
    assert "| 1 | ganmex | 1.00 |" in page  # the leaderboard: ganmex flips first on every image
    assert "flip_fraction@road" in page and "validity" in page


def test_a_missing_run_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `python train.py experiment=decoy_mnist` first"):
        results_page([Section("Decoy", "python train.py experiment=decoy_mnist", tmp_path / "none")])


def test_each_shipped_section_is_a_run_that_reproduce_results_makes():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "reproduce_results.sh").read_text()
    for section in SECTIONS:
        assert f"hydra.run.dir={section.run_dir.as_posix()}" in script, section.title
        assert f"hydra.run.dir={section.run_dir.as_posix()}" in section.command
