"""scripts/pareto_gan.py's bookkeeping: overrides per row, the front, seed means, the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pareto_gan.py"


@pytest.fixture(scope="module")
def pareto():
    spec = importlib.util.spec_from_file_location("pareto_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(validity, oracle, l1, fid, mdts_oracle=0.9, mdts_l1=0.1, mdts_fid=4.0):
    mdts = {"validity": 1.0, "oracle_validity": mdts_oracle, "l1_per_pixel": mdts_l1}
    mdts |= {"changed_fraction": 0.2, "fid": mdts_fid}
    return {
        "validity": validity,
        "oracle_validity": oracle,
        "l1_per_pixel": l1,
        "changed_fraction": 0.1,
        "fid": fid,
        "mdts": mdts,
    }


def test_overrides_of_default_preset_and_coloured_rows(pareto):
    assert pareto.overrides("default") == []
    assert pareto.overrides("default_seed1") == ["seed=1"]
    assert pareto.overrides("ganmex_reference") == ["gan=ganmex_reference"]
    assert pareto.overrides("colored") == [
        "gan.trainer.max_steps=8000",
        "gan.loss.lambda_sim=30",
        "gan.loss.cls_dropout_worst_of=1",
        "dataset=mnist_colored",
    ]
    assert pareto.overrides("half_budget")[0] == "gan.trainer.max_steps=4000"  # the row's own budget wins
    assert "default_seed1" in pareto.SEEDED and "default" not in pareto.SEEDED


def test_front_drops_only_dominated_rows(pareto):
    rows = {
        "a": _row(1.0, 0.95, 0.07, 3.0),
        "b": _row(1.0, 0.94, 0.08, 3.5),  # worse than a on every objective but validity: dominated
        "c": _row(0.99, 0.97, 0.09, 3.0),  # trades proximity for oracle validity: on the front
    }
    assert pareto.pareto_rows(rows) == {"a", "c"}


def test_seed_means_average_rows_and_their_mdts(pareto):
    rows = {
        "default": _row(1.0, 0.96, 0.08, 3.0, mdts_oracle=0.94),
        "default_seed1": _row(1.0, 0.92, 0.06, 2.0, mdts_oracle=0.96),
        "ema": _row(1.0, 0.9, 0.1, 3.0),
    }
    means = pareto.seed_means(rows)
    assert list(means) == ["default (mean of 2 seeds)"]
    mean = means["default (mean of 2 seeds)"]
    assert mean["oracle_validity"] == pytest.approx(0.94) and mean["l1_per_pixel"] == pytest.approx(0.07)
    assert mean["mdts"]["oracle_validity"] == pytest.approx(0.95)
    line = pareto.table({"default": rows["default"]}, {"default"}).splitlines()[2]
    assert line == "| default | 1.000 | 0.960 (0.940) | 0.080 (0.80x) | 0.100 | 3.00 (0.75x) |  | yes |"
