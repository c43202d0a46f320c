"""Runs the configured stages in order and writes the run directory's summary `metrics.json`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import write_json_atomic
from ganmex.errors import ConfigError, check_choice
from ganmex.pipeline.stage_graph import NEEDS, stage_order
from ganmex.pipeline.validate import check_config

if TYPE_CHECKING:  # the stage module imports Lightning: not needed to check a config
    from ganmex.pipeline.stage import StageResult

log = logging.getLogger(__name__)

ORDER = stage_order()


def stage_runners() -> dict[str, Callable[[DictConfig], StageResult]]:
    """Stage name -> the function that runs it. Imported here rather than at the top so that
    validating a config does not pay for Lightning, Captum and the models."""
    from ganmex.pipeline.autoencoder_stage import AutoencoderStage
    from ganmex.pipeline.classifier_stage import OracleStage, classifier_stage
    from ganmex.pipeline.evaluate_stage import run_evaluate_stage
    from ganmex.pipeline.gan_stage import GanStage

    return {
        "classifier": lambda cfg: classifier_stage(cfg).run(),
        "oracle": lambda cfg: OracleStage(cfg).run(),
        "gan": lambda cfg: GanStage(cfg).run(),
        "autoencoder": lambda cfg: AutoencoderStage(cfg).run(),
        "evaluate": run_evaluate_stage,
    }


def _configured(cfg: DictConfig, name: str) -> bool:
    """A stage runs if its config group is present and not set to `none`."""
    group = cfg.get("evaluation" if name == "evaluate" else name)
    return group is not None and not (isinstance(group, DictConfig) and group.get("name") == "none")


def selected_stages(cfg: DictConfig) -> list[str]:
    """`stage=all` runs every enabled stage; `stage=X` runs X and, unless `run_upstream=false`
    (evaluate.py), the enabled stages X is made from (NEEDS). Upstream artifacts are reused when finished."""
    check_choice("stage", cfg.stage, ("all", *ORDER))
    if cfg.stage == "all":
        return [n for n in ORDER if _configured(cfg, n)]
    if cfg.stage != "evaluate" and not _configured(cfg, cfg.stage):
        raise ConfigError(
            f"stage={cfg.stage} is disabled: its config group is `none`; choose one, e.g. gan=stargan"
        )
    upstream = NEEDS[cfg.stage] if cfg.get("run_upstream", True) else ()
    return [n for n in upstream if _configured(cfg, n)] + [cfg.stage]


def validate(cfg: DictConfig) -> None:
    selected_stages(cfg)  # cheap checks first: a bad stage name needs no torch
    check_config(cfg)


def run(cfg: DictConfig) -> dict:
    """Validate, run the stages, and write `<run dir>/metrics.json` describing what ran."""
    validate(cfg)
    from ganmex.quiet import route_lightning_logs
    from ganmex.report.run_summary import format_run_summary

    route_lightning_logs()  # Lightning's lines once, in our format, and into train.log
    started = time.perf_counter()
    summary: dict = {"stages": {}, "config": OmegaConf.to_container(cfg, resolve=True)}
    runners = stage_runners()
    for name in selected_stages(cfg):
        log.info("== stage %s ==", name)
        result = runners[name](cfg)
        summary["stages"][name] = result.summary()
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    summary["run_dir"] = str(cfg.paths.output_dir)
    summary["summary_lines"] = format_run_summary(summary)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output_dir / "metrics.json", summary)
    return summary
