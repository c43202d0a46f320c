"""The last stage: what `evaluate.py` runs. `mode` picks the job; each mode lives in its own module."""

from __future__ import annotations

import importlib
import logging
import time

from omegaconf import DictConfig

from ganmex.pipeline.stage import StageResult
from ganmex.pipeline.validate import check_choice

log = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "report": "ganmex.pipeline.evaluation_stage:run_evaluation",
    "explain": "ganmex.pipeline.explain_mode:run_explain_mode",
    "cem": "ganmex.pipeline.cem_mode:run_cem_mode",
    "classifier_test": "ganmex.pipeline.classifier_test:run_classifier_test",
}


def run_evaluate_stage(cfg: DictConfig) -> StageResult:
    check_choice("mode", cfg.mode, tuple(MODES))
    module, _, function = MODES[cfg.mode].partition(":")
    started = time.perf_counter()
    result = getattr(importlib.import_module(module), function)(cfg)
    result.wall_time_s = time.perf_counter() - started
    return result
