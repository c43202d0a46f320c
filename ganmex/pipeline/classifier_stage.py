"""Stage 1: train (or reuse) the classifier that later gets explained."""

from __future__ import annotations

import logging
import time

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.artifacts import Artifact
from ganmex.models.loading import build_classifier
from ganmex.pipeline.build import build_datamodule, build_trainer
from ganmex.pipeline.stage import StageResult, require_trainable, reused, scalar_metrics, stage_artifact
from ganmex.training.classifier import ClassifierModule

log = logging.getLogger(__name__)


def classifier_artifact(cfg: DictConfig) -> Artifact:
    """Where this config's classifier lives: the hash covers data, architecture, budget and seed."""
    return stage_artifact(cfg, "classifier")


def run_classifier_stage(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    artifact = classifier_artifact(cfg)
    if artifact.exists:
        return reused(artifact, started)
    require_trainable(cfg, "classifier")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg.dataset)
    net = build_classifier(cfg.classifier, datamodule.info)
    module = ClassifierModule(
        net,
        datamodule.num_classes,
        optimizer=instantiate(cfg.classifier.optimizer),
        scheduler=instantiate(cfg.classifier.scheduler) if cfg.classifier.get("scheduler") else None,
    )
    work_dir = artifact.begin()
    resume = artifact.resume_checkpoint()
    if resume is not None:
        log.info("resuming classifier training from %s", resume)
    trainer = build_trainer(cfg, "classifier", work_dir, cfg.classifier.trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    fit_metrics = scalar_metrics(trainer.callback_metrics, ("val/", "train/"))
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {**fit_metrics, **scalar_metrics(trainer.callback_metrics, ("test/",))}
    metrics["train_time_s"] = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:
        record = {
            "dataset_info": datamodule.info.to_dict(),
            "classifier": cfg.classifier,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
        }
        artifact.commit({"state_dict": net.state_dict()}, record, metrics)
    log.info("classifier test/acc = %.4f", metrics.get("test/acc", float("nan")))
    return StageResult("classifier", artifact, False, metrics, time.perf_counter() - started)
