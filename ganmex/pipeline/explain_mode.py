"""`python evaluate.py mode=explain indices=[...]`: explain chosen test images, save the grid PNG.

Reads the finished classifier artifact (and the GAN artifact when the `ganmex` baseline is configured),
explains each image's (source, target) pairs (the run's `pairs` and `contrast`) with every
`attribution` method x compatible `baselines` entry, and writes `<output_dir>/<explain.grid>` plus the
raw attributions next to it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from ganmex.errors import ConfigError
from ganmex.explain.api import explain_all
from ganmex.explain.baselines import instantiate_baselines, needed_context
from ganmex.pipeline.context import EvalContext, pair_selector, run_contrast
from ganmex.pipeline.stage import StageResult
from ganmex.report.heatmaps import log_grid_to_wandb, save_grid, stack_rows

log = logging.getLogger(__name__)
SETTINGS = ("grid", "device")


def explain_settings(cfg: DictConfig) -> DictConfig:
    settings = cfg.get("explain")
    missing = [key for key in SETTINGS if settings is None or key not in settings]
    if missing or cfg.get("indices") is None:
        raise ConfigError(
            f"mode=explain needs `indices` and explain.{{{', '.join(SETTINGS)}}} in the config "
            f"(missing: {', '.join(missing) or 'indices'}); see conf/train.yaml"
        )
    return settings


def run_explain_mode(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    settings = explain_settings(cfg)
    context = EvalContext.open(cfg, settings.device)
    indices = [int(i) for i in cfg.indices]
    images, labels = context.images(indices)
    labels = labels.to(context.device)
    classifier = context.classifier

    methods = context.methods(cfg.attribution, contrast=run_contrast(cfg))
    baselines = instantiate_baselines(cfg.baselines)
    baseline_context = context.baseline_context(needed_context(baselines))
    for baseline in baselines.values():
        baseline.setup(baseline_context)

    with torch.no_grad():
        logits = classifier(images)
    pairs = pair_selector(cfg).select(logits, labels)
    x = images[pairs.index]
    results = explain_all(x, pairs.source, pairs.target, methods, baselines, model=classifier)
    titles = [
        f"#{indices[i]}: {c}→{t}"
        for i, c, t in zip(pairs.index.tolist(), pairs.source.tolist(), pairs.target.tolist(), strict=True)
    ]
    output_dir = Path(cfg.paths.output_dir)
    grid = save_grid(output_dir / settings.grid, x, results, titles)
    torch.save(
        {
            "indices": [indices[i] for i in pairs.index.tolist()],
            "source": pairs.source.cpu(),
            "target": pairs.target.cpu(),
            "attributions": stack_rows(results),
        },
        output_dir / f"{Path(settings.grid).stem}.pt",
    )
    logged = log_grid_to_wandb(grid)
    log.info("explanation grid (%d rows x %d panels) written to %s", len(pairs), len(results), grid)
    metrics = {
        "explain/grid": str(grid),
        "explain/pairs": len(pairs),
        "explain/panels": len(results),
        "explain/wandb": logged,
        "explain/time_s": round(time.perf_counter() - started, 2),
    }
    return StageResult("evaluate", context.artifact, True, metrics, time.perf_counter() - started)
