"""The number a hyper-parameter sweeper optimises, computed from a finished run's summary.

Hydra's Optuna sweeper reads the value returned by the task function. `objective_value(cfg, summary)`
turns the run summary (what `runner.run` returns and writes to `<run dir>/metrics.json`) into that
number, using the `objective` config node that `hparams_search=...` adds; without that node it
returns None, so ordinary runs are unaffected.

GAN loss weights trade validity against proximity: a large lambda_cls buys validity by drawing far
from x (towards MDTS-like images). `validity_at_bounded_proximity` scores validity and subtracts a
steep penalty for every unit of mean per-pixel L1 beyond the bound, so the search prefers the most
valid generator among those that stay close to the input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.errors import ConfigError

GAN_VALIDITY = "val/validity"
GAN_PROXIMITY = "val/proximity_l1"


def stage_metrics(summary: Mapping[str, Any], stage: str) -> dict[str, float]:
    """The metrics one stage reported in a run summary; when the stage reused its artifact and the
    summary has none, the artifact's own metrics.json is read."""
    stages = summary.get("stages", {})
    if stage not in stages:
        ran = ", ".join(stages) or "none"
        raise ConfigError(
            f"the objective needs the {stage} stage's metrics but this run ran stages: {ran}; "
            f"enable it (e.g. gan=stargan) or choose another objective"
        )
    entry = stages[stage]
    metrics = dict(entry.get("metrics") or {})
    if not metrics and entry.get("artifact"):
        path = Path(entry["artifact"]) / "metrics.json"
        if path.is_file():
            metrics = json.loads(path.read_text())
    return metrics


def validity_at_bounded_proximity(
    summary: Mapping[str, Any],
    max_proximity_l1: float,
    penalty: float = 10.0,
    stage: str = "gan",
    validity_key: str = GAN_VALIDITY,
    proximity_key: str = GAN_PROXIMITY,
) -> float:
    """validity - penalty * max(0, proximity_l1 - max_proximity_l1), from the GAN stage's metrics.

    Both metrics come from the GAN stage's fixed validation batch (every (x, t != c) pair). A run
    whose metrics are missing or not finite scores -inf, so a diverged trial never wins."""
    if max_proximity_l1 <= 0 or penalty < 0:
        raise ConfigError(
            f"objective: max_proximity_l1={max_proximity_l1} must be > 0 and penalty={penalty} >= 0"
        )
    metrics = stage_metrics(summary, stage)
    missing = [k for k in (validity_key, proximity_key) if k not in metrics]
    if missing:
        raise ConfigError(
            f"objective: the {stage} stage reported no {missing} (it reported {sorted(metrics)}); "
            f"check the stage's validation loop ran (trainer.limit_val_batches > 0)"
        )
    validity, proximity = float(metrics[validity_key]), float(metrics[proximity_key])
    if not (math.isfinite(validity) and math.isfinite(proximity)):
        return -math.inf
    return validity - penalty * max(0.0, proximity - max_proximity_l1)


def objective_value(cfg: DictConfig, summary: Mapping[str, Any]) -> float | None:
    """What the Hydra task function returns: `cfg.objective` (a `_partial_` callable taking the
    summary) applied to the summary, or None when no objective is configured."""
    spec = cfg.get("objective")
    if spec is None:
        return None
    return float(instantiate(spec)(summary))


def failed_objective(cfg: DictConfig) -> float | None:
    """A failed sweep job's value: NaN when an objective is configured (Optuna records the trial as failed
    and samples on), else None."""
    return math.nan if cfg.get("objective") is not None else None
