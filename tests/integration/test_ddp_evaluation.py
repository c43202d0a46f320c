"""The evaluate stage under `trainer=ddp_cpu` (2 gloo processes, test images sharded across ranks,
torchmetrics gathering) writes the same results.csv numbers as one process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ganmex.pipeline.runner import run

KEYS = ["method", "baseline", "metric"]
# tiny, and the Monte-Carlo metrics thinned so the pair of runs stays well under a minute of CPU
OVERRIDES = [
    "gan=none",
    "oracle=none",
    "logger=none",
    "callbacks=none",
    "evaluation.num_images=8",
    "evaluation.expensive_images=4",
    "evaluation.batch_size=4",
    "evaluation.grid_images=0",
    "evaluation.cem.num_images=0",
    "attribution=[integrated_gradients,saliency]",
    "attribution.integrated_gradients.steps=16",
    "baselines=[zero,blur]",
    "evaluation.metrics.faithfulness_correlation.nr_runs=10",
    "evaluation.metrics.sensitivity_n.nr_runs=5",
    "evaluation.metrics.sensitivity_n.subset_sizes=[0.05,0.2]",
    "evaluation.metrics.infidelity.n_perturb_samples=3",
    "evaluation.metrics.sensitivity_max.n_perturb_samples=3",
]
# Monte-Carlo metrics: they draw their subsets/perturbations per pair from (seed, global test index), so the
# draws do not depend on which rank's shard or batch position an image lands in
SEEDED = ("faithfulness_correlation", "sensitivity_n", "infidelity", "sensitivity_max")


@pytest.fixture(scope="module")
def both_runs(trained_classifier_artifact, tmp_path_factory) -> pd.DataFrame:
    from conftest import compose_config

    frames = {}
    for trainer in ("cpu", "ddp_cpu"):
        root = tmp_path_factory.mktemp(f"evaluate_{trainer}")
        overrides = [*OVERRIDES, f"trainer={trainer}", f"classifier.artifact={trained_classifier_artifact}"]
        cfg = compose_config(root, overrides, name="evaluate")
        run(cfg)
        frames[trainer] = pd.read_csv(Path(cfg.paths.output_dir) / "results.csv")
    merged = frames["cpu"].merge(
        frames["ddp_cpu"], on=KEYS, how="outer", suffixes=("_one", "_ddp"), indicator=True
    )
    merged["seeded"] = merged.metric.str.startswith(SEEDED)
    # ROAD draws its imputation noise per batch and its conjugate-gradient solve stops per batch, so
    # sharding the images changes it slightly: those rows are checked for presence and counts only (a flip
    # fraction's count is the number of pairs that flipped: within one)
    merged["batch_noise"] = merged.metric.str.endswith("@road")
    return merged


def test_ddp_scores_the_same_rows_on_the_same_number_of_images(both_runs):
    assert (both_runs["_merge"] == "both").all(), both_runs.loc[both_runs["_merge"] != "both", KEYS]
    assert len(both_runs) > 40
    # a flip fraction counts the pairs that flipped, which under ROAD's per-batch noise may differ by one
    counted = ~(both_runs.batch_noise & both_runs.metric.str.contains("flip_fraction"))
    assert (both_runs.n_one == both_runs.n_ddp)[counted].all()
    road_flips = both_runs[~counted]
    assert ((road_flips.n_one - road_flips.n_ddp).abs() <= 1).all()
    assert set(both_runs.n_one) <= {4, 8} | set(range(1, 8))  # 8 images, 4 for the expensive metrics


def test_ddp_matches_single_process_for_deterministic_metrics(both_runs):
    rows = both_runs[~both_runs.seeded & ~both_runs.batch_noise]
    assert {
        "deletion_auc@blur",
        "insertion_auc@baseline",
        "region_aopc@blur",
        "gini",
        "sanity_spearman",
    } <= set(rows.metric)
    for column in ("mean", "std"):
        one, ddp = rows[f"{column}_one"].to_numpy(), rows[f"{column}_ddp"].to_numpy()
        assert one == pytest.approx(ddp, rel=1e-5, abs=1e-6, nan_ok=True), column


def test_ddp_matches_single_process_for_seeded_metrics(both_runs):
    rows = both_runs[both_runs.seeded & ~both_runs.batch_noise]
    assert len(rows) >= 8
    assert {m.split("@")[0] for m in rows.metric} == set(SEEDED)
    for column in ("mean", "std"):
        one, ddp = rows[f"{column}_one"].to_numpy(), rows[f"{column}_ddp"].to_numpy()
        assert one == pytest.approx(ddp, rel=1e-5, abs=1e-6, nan_ok=True), column
