"""The end-of-run block lists every stage that ran, with its numbers, time, and the run's outputs."""

from __future__ import annotations

import logging

from ganmex.report.run_summary import TITLE, format_run_summary, headline, print_run_summary


def stage(metrics: dict, wall: float, reused: bool = False, artifact: str | None = None) -> dict:
    return {"artifact": artifact, "reused": reused, "wall_time_s": wall, "metrics": metrics}


SUMMARY = {
    "stages": {
        "classifier": stage(
            {"test/acc": 0.98234, "train_time_s": 40.0}, 0.4, True, "/r/artifacts/classifier-6d8c"
        ),
        "gan": stage(
            {"val/validity": 0.97, "val/proximity_l1": 0.09134}, 370.2, artifact="/r/artifacts/gan-12ab"
        ),
        "oracle": stage({"test/acc": 0.991}, 61.0, artifact="/r/artifacts/oracle-77"),
        "evaluate": stage(
            {
                "n_images": 100,
                "leaderboard": ["1. IG x ganmex  deletion AUC 0.121", "2. IG x mdts  deletion AUC 0.134"],
                "outputs": {"results.md": "/r/run/results.md", "curves.png": "/r/run/curves.png"},
            },
            182.0,
            True,
            "/r/artifacts/classifier-6d8c",
        ),
    },
    "wall_time_s": 614.0,
    "config": {"paths": {"output_dir": "/r/run"}},
}


def test_every_stage_that_ran_is_listed_with_time_and_numbers():
    lines = format_run_summary(SUMMARY)
    assert lines == [
        TITLE,
        "classifier   reused  test accuracy 98.2%  classifier-6d8c",
        "gan            6:10  validity 97.0%, proximity L1 0.09134",
        "oracle         1:01  oracle test accuracy 99.1%",
        "evaluate       3:02  images 100",
        "  1. IG x ganmex  deletion AUC 0.121",
        "  2. IG x mdts  deletion AUC 0.134",
        "total         10:14",
        "run dir: /r/run",
        "results.md: /r/run/results.md",
        "curves.png: /r/run/curves.png",
    ]


def test_stages_not_run_are_absent_and_unknown_stages_still_listed():
    lines = format_run_summary({"stages": {"classifier": stage({}, 5.0), "custom": stage({"x": 1}, 65.0)}})
    assert lines == [TITLE, "classifier     0:05", "custom         1:05"]


def test_results_md_found_beside_an_older_results_csv():
    summary = {"stages": {"evaluate": stage({"results_csv": "/r/run/results.csv"}, 1.0)}}
    assert format_run_summary(summary)[-2:] == ["results: /r/run/results.md", "table: /r/run/results.csv"]


def test_empty_summary():
    assert format_run_summary({}) == [TITLE]


def test_headline_skips_missing_and_non_numeric():
    assert headline("gan", {"val/validity": "n/a", "val/proximity_l1": 0.1}) == "proximity L1 0.1"
    assert headline("classifier", {}) == ""


def test_print_logs_each_line(caplog):
    caplog.set_level(logging.INFO, logger="ganmex")
    lines = print_run_summary(SUMMARY)
    assert [r.getMessage() for r in caplog.records if r.name == "ganmex"] == lines
