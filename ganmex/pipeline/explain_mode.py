"""`python evaluate.py mode=explain indices=[...]`: explain chosen test images, save the grid PNG.

Reads the finished classifier artifact (and the GAN artifact when the `ganmex` baseline is configured),
explains each image's (source, target) pair with every `attribution` method x compatible `baselines`
entry, and writes `<output_dir>/<explain.grid>` plus the raw attributions next to it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from ganmex.data.base import DatasetInfo
from ganmex.errors import ConfigError
from ganmex.explain.api import explain_all
from ganmex.explain.baselines import BaselineContext, instantiate_baselines, needed_context
from ganmex.explain.methods import build_methods
from ganmex.explain.pairs import select_pairs
from ganmex.models.loading import load_classifier
from ganmex.pipeline.build import build_datamodule
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.classifier_test import check_compatible, eval_dataset_config
from ganmex.pipeline.stage import StageResult
from ganmex.report.heatmaps import log_grid_to_wandb, save_grid, stack_rows

log = logging.getLogger(__name__)
SETTINGS = ("output", "pairs", "fixed_target", "source", "seed", "grid", "device")


def explain_settings(cfg: DictConfig) -> DictConfig:
    settings = cfg.get("explain")
    missing = [key for key in SETTINGS if settings is None or key not in settings]
    if missing or cfg.get("indices") is None:
        raise ConfigError(
            f"mode=explain needs `indices` and explain.{{{', '.join(SETTINGS)}}} in the config "
            f"(missing: {', '.join(missing) or 'indices'}); see conf/train.yaml"
        )
    return settings


def explain_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def load_generator(cfg: DictConfig, device: torch.device):
    """The GANMEX generator of this config's gan artifact (or `gan.artifact=<dir>`)."""
    from ganmex.models.loading import load_counterfactual_generator
    from ganmex.pipeline.gan_stage import gan_artifact

    if cfg.get("gan") is None or cfg.gan.get("name") == "none":
        raise ConfigError(
            "the ganmex baseline needs a GAN: set gan=stargan (or gan.artifact=<gan-<hash> dir>)"
        )
    artifact = gan_artifact(cfg)
    if not artifact.exists:
        raise FileNotFoundError(
            f"no finished gan artifact at {artifact.path}; train it with `python train.py stage=gan` "
            f"(same overrides) or drop ganmex from baselines"
        )
    return load_counterfactual_generator(artifact.path, device)


def baseline_context(cfg: DictConfig, needs: set[str], classifier, device: torch.device) -> BaselineContext:
    """Load only what the configured baselines need: training images, the classifier, the generator."""
    context = BaselineContext(classifier=classifier, device=device)
    if "train_images" in needs:
        train = build_datamodule(cfg.dataset).dataset("train")
        context.train_images = (
            train.images.float() / 255.0 if train.images.dtype == torch.uint8 else train.images
        )
        context.train_labels = train.labels
    if "generator" in needs:
        context.generator = load_generator(cfg, device)
    return context


def run_explain_mode(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    settings = explain_settings(cfg)
    artifact = classifier_artifact(cfg)
    if not artifact.exists:
        raise FileNotFoundError(
            f"no finished classifier artifact at {artifact.path}; train it first with "
            f"`python train.py stage=classifier` using the same dataset/classifier overrides"
        )
    device = explain_device(settings.device)
    classifier = load_classifier(artifact.path, device)
    datamodule = build_datamodule(eval_dataset_config(cfg))
    check_compatible(DatasetInfo.from_dict(artifact.config()["dataset_info"]), datamodule.info)
    test = datamodule.dataset("test")
    indices = [int(i) for i in cfg.indices]
    bad = [i for i in indices if not 0 <= i < len(test)]
    if bad or not indices:
        raise ConfigError(
            f"indices {bad or indices} are not in [0, {len(test)}) of {datamodule.info.name}'s test set"
        )
    images = torch.stack([test[i][0] for i in indices]).to(device)
    labels = torch.stack([test[i][1] for i in indices]).to(device)

    methods = build_methods(cfg.attribution, output=settings.output)
    baselines = instantiate_baselines(cfg.baselines)
    context = baseline_context(cfg, needed_context(baselines), classifier, device)
    for baseline in baselines.values():
        baseline.setup(context)

    with torch.no_grad():
        logits = classifier(images)
    if settings.source not in ("predicted", "label"):
        raise ConfigError(f"explain.source={settings.source!r}; choose predicted or label")
    pairs = select_pairs(
        logits,
        settings.pairs,
        labels if settings.source == "label" else None,
        settings.fixed_target,
        settings.seed,
    )
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
    return StageResult("evaluate", artifact, True, metrics, time.perf_counter() - started)
