"""Name, group and tag the W&B run of a Hydra job, and hand it the config flat.

A Hydra multirun launches one job per parameter combination; each job gets its own W&B run (the CLI
finishes it). For the dashboard to be useful without hand-editing, the runs of one sweep share a
`group` (the sweep directory's name), carry the overridden values as tags (`gan.loss.lambda_cls=10`),
and get the whole config as flat `a.b.c` keys, which the parallel-coordinates and table panels need.

`configure_wandb(cfg)` does this in place on `cfg.logger.wandb` before any stage builds its logger;
call it from the Hydra task function (it is a no-op when the wandb logger is not configured).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ganmex.report.wandb_log import flatten_config

log = logging.getLogger(__name__)

MAX_TAG_CHARS = 64  # W&B rejects longer tags
# overrides that say where things go or how they are logged, not what was run: never tags
UNTAGGED_GROUPS = ("paths", "hydra", "logger", "callbacks")


def hydra_runtime() -> DictConfig | None:
    """The current job's Hydra config, or None outside a Hydra job (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _select(hydra_cfg: DictConfig | Mapping | None, key: str, default: Any = None) -> Any:
    if hydra_cfg is None:
        return default
    node = hydra_cfg if isinstance(hydra_cfg, DictConfig) else OmegaConf.create(dict(hydra_cfg))
    return OmegaConf.select(node, key, default=default)


def is_multirun(hydra_cfg: DictConfig | Mapping | None) -> bool:
    return str(_select(hydra_cfg, "mode", "")).upper().endswith("MULTIRUN")


def sweep_group(hydra_cfg: DictConfig | Mapping | None, default: str) -> str:
    """Runs of one multirun share a group: `<task>/<sweep dir name>` (e.g. `train/2025-01-31_12-00-00`).

    A single run keeps `default` (the task name), so single runs of a task group together."""
    if not is_multirun(hydra_cfg):
        return default
    sweep_dir = _select(hydra_cfg, "sweep.dir")
    return f"{default}/{Path(str(sweep_dir)).name}" if sweep_dir else default


def override_tags(overrides: Sequence[str]) -> list[str]:
    """Hydra override strings -> W&B tags `key=value` (leading `+`/`~` dropped, paths and logging
    options left out, each cut to W&B's 64-character limit), in the order given, without repeats."""
    tags: list[str] = []
    for text in overrides:
        tag = str(text).strip().lstrip("+~")
        group = tag.partition("=")[0].split(".")[0].split("/")[0]
        if not tag or group in UNTAGGED_GROUPS:
            continue
        tag = tag if len(tag) <= MAX_TAG_CHARS else tag[: MAX_TAG_CHARS - 3] + "..."
        if tag not in tags:
            tags.append(tag)
    return tags


def _escape(value: Any) -> Any:
    """Keep strings that look like interpolations literal once they sit inside the config again."""
    return value.replace("${", "\\${") if isinstance(value, str) else value


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The job's config as `{"a.b.c": value}` (the logger's own section left out)."""
    flat = flatten_config(cfg)
    return {k: _escape(v) for k, v in flat.items() if not k.startswith("logger.")}


def configure_wandb(cfg: DictConfig, hydra_cfg: DictConfig | Mapping | None = None) -> bool:
    """Fill `cfg.logger.wandb` group, tags, name and flat config; returns False when W&B is not used.

    Explicit settings win: a `logger.wandb.group=...` override keeps its value (it is then no longer
    the `${task_name}` interpolation), and tags given in config are kept in front of the new ones."""
    wandb_cfg = OmegaConf.select(cfg, "logger.wandb")
    if not isinstance(wandb_cfg, DictConfig) or "_target_" not in wandb_cfg:
        return False
    hydra_cfg = hydra_runtime() if hydra_cfg is None else hydra_cfg
    task = str(cfg.get("task_name", "run"))
    tags = override_tags(list(_select(hydra_cfg, "overrides.task", []) or []))
    with open_dict(cfg):
        group_is_default = OmegaConf.is_interpolation(wandb_cfg, "group") or wandb_cfg.get("group") is None
        if group_is_default:
            wandb_cfg.group = sweep_group(hydra_cfg, task)
        wandb_cfg.tags = list(dict.fromkeys([*(wandb_cfg.get("tags") or []), *tags]))
        if wandb_cfg.get("name") is None and is_multirun(hydra_cfg):
            wandb_cfg.name = f"{wandb_cfg.group}/{_select(hydra_cfg, 'job.num', 0)}"
        wandb_cfg.config = flat_config(cfg)
        wandb_cfg._convert_ = "all"  # a plain dict reaches wandb.init(config=...)
    log.info("W&B run: group %s, tags %s", wandb_cfg.group, list(wandb_cfg.tags))
    return True


# dashboard names: summary key -> (stage, metric in that stage's metrics.json)
SUMMARY_ALIASES = {
    "classifier/test_acc": ("classifier", "test/acc"),
    "classifier/val_acc": ("classifier", "val/acc"),
    "gan/validity": ("gan", "val/validity"),
    "gan/proximity_l1": ("gan", "val/proximity_l1"),
    "autoencoder/val_loss": ("autoencoder", "val/loss"),
}


def summary_aliases(summary: dict) -> dict[str, float]:
    """Consistent W&B summary names for the stages' headline numbers (absent stages are skipped)."""
    stages = summary.get("stages", {})
    values = {}
    for key, (stage, metric) in SUMMARY_ALIASES.items():
        value = stages.get(stage, {}).get("metrics", {}).get(metric)
        if isinstance(value, int | float):
            values[key] = float(value)
    return values


def log_run_summary(summary: dict) -> bool:
    """Write `summary_aliases` into the active W&B run's summary; False when no run is active."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return False
    run.summary.update(summary_aliases(summary))
    return True
