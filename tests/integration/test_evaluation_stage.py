"""The evaluate stage end to end on real digits: every output is written and the numbers hang together."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ganmex.pipeline.runner import run

OVERRIDES = [
    "gan=none",
    "logger=none",
    "callbacks=none",
    "evaluation.num_images=12",
    "evaluation.expensive_images=4",
    "evaluation.batch_size=6",
    "attribution=[integrated_gradients,saliency]",
    "baselines=[zero,mdts]",
    "evaluation.cem.num_images=4",
    "evaluation.cem.iterations=30",
    "evaluation.cem.n_searches=2",
]


@pytest.fixture(scope="module")
def evaluated(trained_classifier_artifact, tmp_path_factory) -> Path:
    from conftest import compose_config

    root = tmp_path_factory.mktemp("evaluate")
    cfg = compose_config(
        root, [*OVERRIDES, f"classifier.artifact={trained_classifier_artifact}"], name="evaluate"
    )
    run(cfg)
    return Path(cfg.paths.output_dir)


def test_all_outputs_are_written(evaluated):
    for name in (
        "results.csv",
        "results.md",
        "curves.png",
        "sanity.png",
        "attributions.png",
        "records.jsonl",
        "metrics.json",
    ):
        assert (evaluated / name).is_file() and (evaluated / name).stat().st_size > 0, name


def test_results_cover_methods_baselines_and_metrics(evaluated):
    frame = pd.read_csv(evaluated / "results.csv")
    pairs = set(zip(frame.method, frame.baseline, strict=True))
    assert {("integrated_gradients", "zero"), ("integrated_gradients", "mdts"), ("saliency", "none")} <= pairs
    ig_zero = frame[(frame.method == "integrated_gradients") & (frame.baseline == "zero")].set_index("metric")
    for metric in (
        "deletion_auc@baseline",
        "deletion_auc@blur",
        "insertion_auc@blur",
        "aopc@blur",
        "faithfulness_correlation@baseline",
        "infidelity",
        "gini",
        "sanity_spearman",
        "sensitivity_max",
        "sensitivity_n@baseline",
    ):
        assert metric in ig_zero.index, metric
    assert ig_zero.loc["deletion_auc@blur", "n"] == 12  # runner-up pairs: one per image
    assert ig_zero.loc["sanity_spearman", "n"] == 4  # expensive metrics: first 4 pairs only
    assert 0 <= ig_zero.loc["gini", "mean"] <= 1


def test_mdts_counterfactuals_are_valid_by_construction(evaluated):
    frame = pd.read_csv(evaluated / "results.csv")
    mdts = frame[(frame.method == "-") & (frame.baseline == "mdts")].set_index("metric")
    assert mdts.loc["validity", "mean"] == 1.0  # MDTS is a training image f assigns to t
    assert 0 < mdts.loc["proximity_l1", "mean"] < 1  # mean per-pixel |delta| in [0, 1] pixels


def test_deleting_towards_the_counterfactual_flips_the_class(evaluated):
    frame = pd.read_csv(evaluated / "results.csv")
    row = frame[
        (frame.method == "integrated_gradients")
        & (frame.baseline == "mdts")
        & (frame.metric == "flip_fraction@baseline")
    ].iloc[0]
    # replacing all pixels by the MDTS image makes f predict t, so every pair flips before the end
    assert row["n"] == 12 and 0 < row["mean"] <= 1


def test_run_summary_names_the_results(evaluated):
    summary = json.loads((evaluated / "metrics.json").read_text())
    stage = summary["stages"]["evaluate"]["metrics"]
    assert stage["n_images"] == 12 and stage["results_csv"].endswith("results.csv")
    assert any(key.startswith("eval/integrated_gradients/zero/") for key in stage)


def test_cem_counterfactuals_sit_beside_the_generator_baselines(evaluated):
    frame = pd.read_csv(evaluated / "results.csv")
    cem = frame[frame.method == "-"].set_index(["baseline", "metric"])
    for mode in ("cem_pn", "cem_pp"):
        assert cem.loc[(mode, "validity"), "n"] == 4
        assert 0 <= cem.loc[(mode, "validity"), "mean"] <= 1
        assert 0 <= cem.loc[(mode, "change_sparsity"), "mean"] <= 1


def test_gan_quality_mode_scores_every_other_class_under_the_record_names(
    trained_classifier_artifact, tmp_path
):
    """mode=gan_quality: x' for each of 6 test digits x 9 other classes, named as in the report."""
    from conftest import compose_config

    overrides = ["gan=none", "oracle=none", "logger=none", "callbacks=none", "baselines=[mdts]"]
    overrides += ["mode=gan_quality", "evaluation.num_images=6", "evaluation.batch_size=4"]
    cfg = compose_config(
        tmp_path, [*overrides, f"classifier.artifact={trained_classifier_artifact}"], name="evaluate"
    )
    run(cfg)
    frame = pd.read_csv(Path(cfg.paths.output_dir) / "results.csv").set_index("metric")
    assert set(frame.index) == {
        "validity",
        "proximity_l1",
        "proximity_l2",
        "change_sparsity",
        "nn_distance",
        "fid",
        "kid",
    }
    assert (
        frame.loc["validity", "n"] == 6 * 9 and frame.loc["validity", "mean"] == 1.0
    )  # MDTS: valid by design
    assert 0 < frame.loc["proximity_l1", "mean"] < 1 and frame.loc["fid", "n"] == 1
