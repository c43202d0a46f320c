"""Runs the configured stages in order and writes the run directory's summary `metrics.json`."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import write_json_atomic
from ganmex.errors import ConfigError
from ganmex.pipeline.stage import StageResult
from ganmex.pipeline.validate import check_choice, check_classifier_fits, check_positive

log = logging.getLogger(__name__)

# stage name -> "module:function"; imported lazily so a stage's heavy deps load only when it runs
STAGES: dict[str, str] = {
    "classifier": "ganmex.pipeline.classifier_stage:run_classifier_stage",
    "gan": "ganmex.pipeline.gan_stage:run_gan_stage",
    "autoencoder": "ganmex.pipeline.autoencoder_stage:run_autoencoder_stage",
    "evaluate": "ganmex.pipeline.evaluate_stage:run_evaluate_stage",
}
ORDER = ("classifier", "gan", "autoencoder", "evaluate")


def _stage_function(name: str) -> Callable[[DictConfig], StageResult]:
    module, _, function = STAGES[name].partition(":")
    return getattr(importlib.import_module(module), function)


def _enabled(cfg: DictConfig, name: str) -> bool:
    """A stage runs if it is implemented and its config group is not set to `none`."""
    if name not in STAGES:
        return False
    group = cfg.get(name, "present") if name != "evaluate" else cfg.get("evaluation", "present")
    return group is not None and not (isinstance(group, DictConfig) and group.get("name") == "none")


def selected_stages(cfg: DictConfig) -> list[str]:
    """`stage=all` runs every enabled stage; `stage=X` runs X and, unless `run_upstream=false`
    (evaluate.py), the enabled stages before it. Upstream artifacts are reused when finished."""
    check_choice("stage", cfg.stage, ("all", *ORDER))
    if cfg.stage == "all":
        return [n for n in ORDER if _enabled(cfg, n)]
    if cfg.stage != "evaluate" and not _enabled(cfg, cfg.stage):
        raise ConfigError(
            f"stage={cfg.stage} is disabled: its config group is `none`; choose one, e.g. gan=stargan"
        )
    upstream = ORDER[: ORDER.index(cfg.stage)] if cfg.get("run_upstream", True) else ()
    return [n for n in upstream if _enabled(cfg, n)] + [cfg.stage]


def validate(cfg: DictConfig) -> None:
    check_positive(cfg)
    check_classifier_fits(cfg)
    selected_stages(cfg)


def run(cfg: DictConfig) -> dict:
    """Validate, run the stages, and write `<run dir>/metrics.json` describing what ran."""
    validate(cfg)
    started = time.perf_counter()
    summary: dict = {"stages": {}, "config": OmegaConf.to_container(cfg, resolve=True)}
    for name in selected_stages(cfg):
        log.info("== stage %s ==", name)
        result = _stage_function(name)(cfg)
        summary["stages"][name] = result.summary()
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output_dir / "metrics.json", summary)
    return summary
