"""`python evaluate.py mode=gan_quality`: the counterfactual baselines' x' judged on their own.

For the first `evaluation.num_images` test images and every target t other than the true label c, each
of `evaluation.counterfactual_baselines` (GANMEX's G(x, t), MDTS) makes x', and the evaluate stage's own
counterfactual metric (`evaluation.metrics.counterfactual`, with the oracle and the training images)
scores it: validity and oracle validity, proximity, change sparsity, FID/KID in the oracle's features,
and with ground-truth masks (decoy_mnist) the share of the edit inside them. Writes results.csv /
results.md (method `-`, one row per baseline x quantity) into the run directory.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from ganmex.errors import ConfigError
from ganmex.explain.baselines import build_baselines, instantiate_baselines, needed_context
from ganmex.metrics.protocol import ExplainedBatch
from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.evaluation_module import collect_results, evaluation_masks
from ganmex.pipeline.evaluation_stage import IndexedDataset, evaluation_images
from ganmex.pipeline.stage import StageResult
from ganmex.report import aggregate, write_report
from ganmex.report.records import NO_METHOD
from ganmex.report.wandb_log import summary_values

log = logging.getLogger(__name__)
METRIC = "counterfactual"


def counterfactual_baselines(cfg: DictConfig, context: EvalContext) -> dict:
    """The configured `evaluation.counterfactual_baselines`, built against the finished artifacts."""
    names = [n for n in cfg.evaluation.counterfactual_baselines if n in (cfg.get("baselines") or {})]
    if not names:
        raise ConfigError(
            f"mode=gan_quality scores evaluation.counterfactual_baselines "
            f"{list(cfg.evaluation.counterfactual_baselines)}, but none is in baselines; "
            f"e.g. baselines=[mdts,ganmex]"
        )
    configs = {name: cfg.baselines[name] for name in names}
    baseline_context = context.baseline_context(
        needed_context(instantiate_baselines(configs)) | {"train_images"}
    )
    return build_baselines(configs, baseline_context), baseline_context.train_images


def run_gan_quality_mode(cfg: DictConfig) -> StageResult:
    context = EvalContext.open(cfg)
    test = evaluation_images(cfg, context)
    baselines, train_images = counterfactual_baselines(cfg, context)
    masks = evaluation_masks(context.datamodule, len(test))
    oracle = context.oracle()
    extra = {"train_images": train_images, **({"oracle": oracle} if oracle is not None else {})}
    metrics = {
        name: instantiate(cfg.evaluation.metrics[METRIC], **extra).to(context.device) for name in baselines
    }
    classes = context.trained_info.num_classes
    loader = DataLoader(IndexedDataset(test), batch_size=cfg.evaluation.batch_size)
    for images, labels, index in loader:
        images, labels = images.to(context.device), labels.to(context.device)
        for t in range(classes):
            keep = labels != t
            x, source = images[keep], labels[keep]
            target = torch.full_like(source, t)
            pair_masks = None if masks is None else masks[index[keep.cpu()]].to(context.device)
            for name, baseline in baselines.items():
                with torch.no_grad():
                    counterfactuals = baseline(x, source, target)
                batch = ExplainedBatch(
                    context.classifier, x, source, target, NO_METHOD, name, baseline_values=counterfactuals
                )
                metrics[name].update(replace(batch, masks=pair_masks))
    outputs = {f"{METRIC}|{name}": list(metric.outputs(METRIC)) for name, metric in metrics.items()}
    scopes = {f"{METRIC}|{name}": (METRIC, NO_METHOD, name, None) for name in metrics}
    results = collect_results(outputs, scopes)
    output_dir = Path(cfg.paths.output_dir)
    files = write_report(results, output_dir, config=cfg)
    log.info("counterfactual quality of %s on %d test images x every other class", list(metrics), len(test))
    summary = {"results_csv": str(files.results_csv), "n_images": len(test)}
    summary.update(summary_values(aggregate(results.records)))
    return StageResult("evaluate", context.artifact, True, summary)
