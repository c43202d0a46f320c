"""The CEM measurement (scripts/measure_cem.py): both modes scored and timed both ways, its table, and
the clear line when the γ term has no autoencoder."""

from __future__ import annotations

import pytest
import torch

from ganmex.bench.cem import cem_markdown, cem_measure, run_cem_measure
from ganmex.bench.inputs import untrained_mnist_cnn

SETTINGS = {"kappa": 0.0, "beta": 0.1, "gamma": 0.0, "iterations": 2, "n_searches": 1}


def test_both_modes_are_scored_and_timed():
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    summary, results = cem_measure(untrained_mnist_cnn(), None, images, SETTINGS, single=1)
    assert list(summary) == ["PN", "PP"] and [r.mode for r in results.values()] == ["PN", "PP"]
    for mode, scores in summary.items():
        assert 0 <= scores[f"cem_{mode.lower()}/validity"] <= 1
        assert scores["time_per_image_batched_s"] >= 0 and scores["time_per_image_single_s"] >= 0
        assert len(results[mode].delta) == len(images)


def test_table_has_one_row_per_mode():
    scores = {"validity": 1.0, "l1": 28.94, "sparsity": 0.9061}
    summary = {
        mode: {
            **{f"cem_{mode.lower()}/{k}": v for k, v in scores.items()},
            "time_per_image_batched_s": 6.37,
            "time_per_image_single_s": 57.4,
            "speedup": 9.0,
        }
        for mode in ("PN", "PP")
    }
    lines = cem_markdown(summary).splitlines()
    assert lines[2] == "| PN | 1.00 | 28.94 | 0.906 | 6.37 | 57.4 | 9.0x |"
    assert lines[3].startswith("| PP | ")


def test_gamma_without_autoencoder_names_the_fix(tmp_path):
    with pytest.raises(
        ValueError, match="gamma=1.0 needs an autoencoder: pass --autoencoder <dir> or --gamma 0"
    ):
        run_cem_measure({**SETTINGS, "gamma": 1.0}, out=tmp_path / "cem.json")
