"""Log results to the active W&B run: a results Table, the PNGs, flat summary keys and a flat config.

Everything here is a no-op (returns False) when no W&B run is active, so the evaluation stage can call
it unconditionally. wandb is only looked up in `sys.modules`: if nothing imported it, no run can exist,
and the import cost is not paid. Call it on rank zero only.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)

SUMMARY_PREFIX = "eval"


def active_run() -> Any | None:
    """The current wandb run, or None when wandb is not imported or no run was started."""
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def flatten_config(config: Mapping | DictConfig, separator: str = ".") -> dict[str, Any]:
    """Nested config -> {"a.b.c": value}, so W&B's parallel-coordinates and table panels can use it.

    Interpolations are resolved when possible (outside a Hydra job `${hydra:...}` cannot be, and those
    values are kept as their raw `${...}` text).
    """
    if isinstance(config, DictConfig):
        try:
            config = OmegaConf.to_container(config, resolve=True)
        except OmegaConfBaseException:
            config = OmegaConf.to_container(config, resolve=False)
    flat: dict[str, Any] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                visit(f"{prefix}{separator}{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value

    visit("", config)
    return flat


def summary_key(method: str, baseline: str, metric: str, prefix: str = SUMMARY_PREFIX) -> str:
    return f"{prefix}/{method}/{baseline}/{metric}"


def summary_values(frame: pd.DataFrame, prefix: str = SUMMARY_PREFIX) -> dict[str, float]:
    """`eval/<method>/<baseline>/<metric>` -> mean, for every finite aggregated row."""
    return {
        summary_key(row.method, row.baseline, row.metric, prefix): float(row.mean)
        for row in frame.itertuples(index=False)
        if math.isfinite(float(row.mean))
    }


def log_results(
    frame: pd.DataFrame,
    images: Mapping[str, str | Path | None] | None = None,
    config: Mapping | DictConfig | None = None,
    prefix: str = SUMMARY_PREFIX,
) -> bool:
    """Log to the active run; returns True if something was logged, False when no run is active.

    - `<prefix>/results`: a wandb.Table of `frame` (results.csv's rows);
    - `<prefix>/<name>`: a wandb.Image per existing PNG in `images` (name -> path);
    - summary `<prefix>/<method>/<baseline>/<metric>` = mean;
    - `config`, flattened with dots, into run.config.
    """
    run = active_run()
    if run is None:
        return False
    wandb = sys.modules["wandb"]
    payload: dict[str, Any] = {
        f"{prefix}/results": wandb.Table(
            dataframe=frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        )
    }
    for name, path in (images or {}).items():
        if path is not None and Path(path).is_file():
            payload[f"{prefix}/{name}"] = wandb.Image(str(path), caption=Path(path).name)
    run.log(payload)
    for key, value in summary_values(frame, prefix).items():
        run.summary[key] = value
    if config is not None:
        run.config.update(flatten_config(config), allow_val_change=True)
    log.info(
        "logged %d results and %d images to W&B run %s", len(frame), len(payload) - 1, getattr(run, "id", "?")
    )
    return True
