"""conf/evaluation/default.yaml builds every metric and reference."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import ganmex.metrics as gm

CONF = Path(__file__).resolve().parents[2] / "conf" / "evaluation" / "default.yaml"


def test_default_evaluation_config_instantiates():
    cfg = OmegaConf.create({"seed": 3, "contrast": "one_vs_one", "evaluation": OmegaConf.load(CONF)})
    metrics = instantiate(cfg.evaluation.metrics)
    refs = instantiate(cfg.evaluation.references)
    assert isinstance(metrics.deletion, gm.PerturbationCurve) and metrics.deletion.contrast == "one_vs_one"
    assert metrics.insertion.mode == "insertion" and metrics.region_deletion.feature == "patch"
    assert metrics.faithfulness_correlation.seed == 3
    assert isinstance(metrics.counterfactual, gm.CounterfactualQuality)
    assert isinstance(refs.road, gm.NoisyLinearImputer) and refs.blur.sigma == 4.0
    assert set(cfg.evaluation.curve_references) <= {"baseline", *refs.keys()}
    x = torch.rand(2, 1, 28, 28)
    assert refs.zero(x, None, None).abs().sum() == 0
