"""`mode=report`, the evaluate stage proper: which baselines give faithful one-vs-one explanations?

Loads the finished classifier (and GAN, when the `ganmex` baseline is configured), explains the
configured test images with every method x compatible baseline, scores them with every metric in
`evaluation.metrics`, and writes results.csv / results.md / curves.png / sanity.png / attributions.png
into the run directory (plus W&B, plus a rich table in the terminal).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Subset

from ganmex.errors import ConfigError
from ganmex.explain.api import explain_plan
from ganmex.explain.baselines import build_baselines, instantiate_baselines, needed_context
from ganmex.explain.pairs import Pairs, PairSelector
from ganmex.metrics.sanity import has_randomisable_layers
from ganmex.pipeline.build import build_trainer
from ganmex.pipeline.context import EvalContext, gan_configured, pair_selector, run_contrast
from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan, evaluation_masks
from ganmex.pipeline.evaluation_workers import evaluate_in_workers, resolve_workers
from ganmex.pipeline.stage import StageResult
from ganmex.report import aggregate, write_report
from ganmex.report.progress import Progress
from ganmex.report.records import EvalResults
from ganmex.report.wandb_log import summary_values

log = logging.getLogger(__name__)


class IndexedDataset(Dataset):
    """Yields (image, label, index) with the item's global index in the wrapped dataset: the seeded
    Monte-Carlo metrics draw per example from (seed, index), the same whichever rank scores it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, label = self.dataset[index]
        return image, label, index


class _EvalModule(EvaluationModule):
    """Adds the test dataloader, built inside each rank so every rank gets its own shard."""

    def __init__(self, classifier, plan: EvaluationPlan, dataset, batch_size: int) -> None:
        super().__init__(classifier, plan)
        self.dataset = dataset
        self.batch_size = batch_size

    def test_dataloader(self) -> DataLoader:
        sampler = None
        # interleaved (rank r takes images r, r + world, ...), unpadded shards: no image is counted twice
        if self.trainer.world_size > 1:
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                self.dataset,
                num_replicas=self.trainer.world_size,
                rank=self.trainer.global_rank,
                shuffle=False,
            )
        return DataLoader(IndexedDataset(self.dataset), batch_size=self.batch_size, sampler=sampler)


def test_in_workers(module: EvaluationModule, test: Dataset, batch_size: int, workers: int) -> None:
    """`trainer.test` on `workers` processes (ganmex/pipeline/evaluation_workers.py): the same progress
    lines and results files."""
    units = len(explain_plan(module.plan.methods, module.plan.baselines))
    batches = -(-len(test) // batch_size)
    progress = Progress(batches * units, "evaluate", interval_s=module.plan.progress_interval_s)
    with progress:
        evaluate_in_workers(module, IndexedDataset(test), batch_size, workers, progress)
    module.results = module.collect()
    if module.results_dir is not None:
        module.results.save(module.results_dir)


def build_plan(cfg: DictConfig, context: EvalContext) -> EvaluationPlan:
    ev = cfg.evaluation
    methods = context.methods(cfg.get("attribution"), contrast=run_contrast(cfg))
    if not methods:
        raise ConfigError(
            "no attribution methods configured; e.g. attribution=[integrated_gradients,deeplift]"
        )
    baseline_cfg = dict(cfg.get("baselines") or {})
    if "ganmex" in baseline_cfg and not gan_configured(cfg):
        log.warning("gan=none: the ganmex baseline is skipped (train one with gan=stargan to include it)")
        baseline_cfg.pop("ganmex")
    needs = needed_context(instantiate_baselines(baseline_cfg))
    baseline_context = context.baseline_context(needs | {"train_images"})
    baselines = build_baselines(baseline_cfg, baseline_context)
    references = {name: instantiate(conf) for name, conf in ev.references.items()}
    unknown = [r for r in ev.curve_references if r != "baseline" and r not in references]
    if unknown:
        raise ConfigError(
            f"evaluation.curve_references {unknown} are not defined under evaluation.references "
            f"({', '.join(references)}) nor `baseline`"
        )
    metric_configs = {name: conf for name, conf in ev.metrics.items() if conf is not None}
    if "sanity" in metric_configs and not has_randomisable_layers(context.classifier):
        log.warning(
            "skipping the cascading-randomisation sanity check: the classifier has no layer with "
            "reset_parameters to re-initialise (a TorchScript model or an exported graph)"
        )
        metric_configs.pop("sanity")
    return EvaluationPlan(
        methods=methods,
        baselines=baselines,
        metric_configs=metric_configs,
        references=references,
        curve_references=list(ev.curve_references),
        pairs=pair_selector(cfg),
        expensive_images=ev.expensive_images,
        share_work=ev.share_work,
        counterfactual_baselines=[b for b in ev.counterfactual_baselines if b in baselines],
        train_images=baseline_context.train_images,
    )


def evaluation_images(cfg: DictConfig, context: EvalContext) -> Dataset:
    """The first `evaluation.num_images` test images (null: the whole test split)."""
    n = cfg.evaluation.num_images
    if n is None:
        return context.test
    if n <= 0:
        raise ConfigError(f"evaluation.num_images={n} must be > 0 or null (the whole test split)")
    return Subset(context.test, range(min(n, len(context.test))))


def run_evaluation(cfg: DictConfig) -> StageResult:
    if cfg.get("evaluation") is None or cfg.evaluation.get("name") == "none":
        raise ConfigError("evaluation=none: choose a metric set, e.g. evaluation=default")
    context = EvalContext.open(cfg)
    classifier, device = context.classifier, context.device
    test, eval_name = evaluation_images(cfg, context), context.name
    plan = build_plan(cfg, context)
    plan.masks = evaluation_masks(context.datamodule, len(test))  # ground truth (decoy_mnist), when any
    plan.oracle = context.oracle()
    plan.progress_interval_s = cfg.get("progress", {}).get("interval_s", plan.progress_interval_s)
    output_dir = Path(cfg.paths.output_dir)
    module = _EvalModule(classifier, plan, test, cfg.evaluation.batch_size)
    module.results_dir = output_dir
    log.info(
        "evaluating %d %s test images: methods %s x baselines %s",
        len(test),
        eval_name,
        list(plan.methods),
        list(plan.baselines),
    )
    trainer = build_trainer(cfg, "evaluate", output_dir, inference_mode=False, use_distributed_sampler=False)
    workers = 1 if trainer.world_size > 1 else resolve_workers(cfg.evaluation.get("workers"), device)
    if workers > 1:
        log.info("evaluating in %d worker processes of 1 torch thread each (evaluation.workers)", workers)
        test_in_workers(module, test, cfg.evaluation.batch_size, workers)
    else:
        trainer.test(module, verbose=False)
    results = EvalResults.load(output_dir)
    add_cem_records(cfg, classifier, test, results, device)
    images = {"attributions": attribution_grid(cfg, classifier, plan, test, output_dir, device)}
    files = write_report(results, output_dir, config=cfg, extra_images=images)
    frame = aggregate(results.records)
    summary = {"results_csv": str(files.results_csv), "n_images": len(test), **summary_values(frame)}
    summary.update(files.summary())  # leaderboard lines and output paths, for the end-of-run block
    return StageResult("evaluate", context.artifact, True, summary)


def attribution_grid(
    cfg: DictConfig, classifier, plan: EvaluationPlan, test, output_dir: Path, device
) -> Path | None:
    """attributions.png: the first `evaluation.grid_images` test images with exactly the pairs the metrics
    scored (the plan's selector on the first batch), every method x compatible baseline."""
    from ganmex.explain.api import explain_all
    from ganmex.report.heatmaps import save_grid

    count = min(cfg.evaluation.grid_images, len(test), cfg.evaluation.batch_size)
    if count <= 0:
        return None
    x, pairs = grid_pairs(classifier, plan.pairs, test, count, cfg.evaluation.batch_size, device)
    results = explain_all(x, pairs.source, pairs.target, plan.methods, plan.baselines, model=classifier)
    titles = [f"{int(c)} vs {int(t)}" for c, t in zip(pairs.source, pairs.target, strict=True)]
    return save_grid(output_dir / "attributions.png", x, results, row_titles=titles)


def grid_pairs(
    classifier, selector: PairSelector, test, count: int, batch_size: int, device
) -> tuple[torch.Tensor, Pairs]:
    """The pairs of the first `count` test images exactly as the evaluation scored them: the selector
    applied to the whole first batch (batch offset 0), then cut to those images."""
    first = min(batch_size, len(test))
    images = torch.stack([test[i][0] for i in range(first)]).to(device)
    labels = torch.as_tensor([int(test[i][1]) for i in range(first)], device=device)
    with torch.no_grad():
        pairs = selector.select(classifier(images), labels, offset=0)
    shown = pairs.index < count
    pairs = Pairs(pairs.index[shown], pairs.source[shown], pairs.target[shown])
    return images[pairs.index], pairs


def add_cem_records(cfg: DictConfig, classifier, test, results: EvalResults, device) -> None:
    """CEM pertinent negatives / positives of the first `evaluation.cem.num_images` test images, as
    counterfactual records beside GANMEX and MDTS (baselines `cem_pn`, `cem_pp`, method `-`).

    PN validity = f picks another class with margin kappa; PP validity = f keeps the class with margin
    kappa; proximity_l1 = mean per-pixel |delta|; change_sparsity = fraction of pixels delta touches."""
    from ganmex.explain.cem import ContrastiveExplainer

    settings = cfg.evaluation.get("cem")
    if settings is None or not settings.num_images or cfg.get("cem") is None:
        return
    count = min(settings.num_images, len(test))
    images = torch.stack([test[i][0] for i in range(count)]).to(device)
    options = {
        k: v for k, v in cfg.cem.items() if k not in ("_target_", "_partial_", "mode", "autoencoder_artifact")
    }
    options.update({k: v for k, v in settings.items() if k != "num_images"})
    for mode in ("PN", "PP"):
        result = ContrastiveExplainer(classifier, None, mode=mode, **{**options, "progress": False}).explain(
            images
        )
        name = f"cem_{mode.lower()}"
        pixels = result.delta[0].numel()
        results.add("-", name, "validity", result.valid.float(), higher_is_better=True)
        results.add("-", name, "proximity_l1", result.l1 / pixels, higher_is_better=False)
        results.add("-", name, "change_sparsity", result.l0.float() / pixels, higher_is_better=False)
    log.info("CEM PN/PP on %d test images added to the report", count)
