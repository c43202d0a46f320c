"""The last stage: what `evaluate.py` runs. `mode` picks the job; each mode lives in its own module."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from omegaconf import DictConfig

from ganmex.errors import check_choice
from ganmex.pipeline.stage import StageResult

log = logging.getLogger(__name__)

MODES = ("report", "explain", "cem", "classifier_test", "gan_quality")


def mode_runner(mode: str) -> Callable[[DictConfig], StageResult]:
    """The function behind `mode=`; each mode's module is imported only when it runs."""
    check_choice("mode", mode, MODES)
    if mode == "report":
        from ganmex.pipeline.evaluation_stage import run_evaluation

        return run_evaluation
    if mode == "explain":
        from ganmex.pipeline.explain_mode import run_explain_mode

        return run_explain_mode
    if mode == "cem":
        from ganmex.pipeline.cem_mode import run_cem_mode

        return run_cem_mode
    if mode == "gan_quality":
        from ganmex.pipeline.gan_quality_mode import run_gan_quality_mode

        return run_gan_quality_mode
    from ganmex.pipeline.classifier_test import run_classifier_test

    return run_classifier_test


def run_evaluate_stage(cfg: DictConfig) -> StageResult:
    runner = mode_runner(cfg.mode)
    started = time.perf_counter()
    result = runner(cfg)
    result.wall_time_s = time.perf_counter() - started
    return result
