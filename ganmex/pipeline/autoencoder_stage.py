"""Autoencoder stage: train (or reuse) the conv autoencoder used by CEM (γ term) and FIDO (in-painting).

Artifact `autoencoder-<hash>` holds `checkpoint.ckpt` = {"state_dict", "hparams"}; load it with
`ganmex.models.autoencoder.load_autoencoder(artifact_dir, device)`, or find this config's artifact with
`autoencoder_artifact(cfg)`.
"""

from __future__ import annotations

import logging
import time

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.artifacts import Artifact
from ganmex.pipeline.build import build_datamodule, build_trainer
from ganmex.pipeline.stage import StageResult, require_trainable, reused, scalar_metrics, stage_artifact
from ganmex.training.autoencoder import AutoencoderModule

log = logging.getLogger(__name__)


def autoencoder_artifact(cfg: DictConfig) -> Artifact:
    """Where this config's autoencoder lives: the hash covers data, architecture, masks, budget and seed."""
    return stage_artifact(cfg, "autoencoder")


def run_autoencoder_stage(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    artifact = autoencoder_artifact(cfg)
    if artifact.exists:
        return reused(artifact, started)
    require_trainable(cfg, "autoencoder")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg.dataset)
    info = datamodule.info
    net = instantiate(cfg.autoencoder.net, channels=info.channels, image_size=info.image_size)
    masks = cfg.autoencoder.masks
    module = AutoencoderModule(
        net,
        optimizer=instantiate(cfg.autoencoder.optimizer),
        mask_prob=masks.prob,
        min_box=masks.min_box,
        max_box=masks.max_box,
        num_boxes=masks.num_boxes,
        eval_seed=cfg.seed,
    )
    work_dir = artifact.begin()
    resume = artifact.resume_checkpoint()
    if resume is not None:
        log.info("resuming autoencoder training from %s", resume)
    trainer = build_trainer(cfg, "autoencoder", work_dir, cfg.autoencoder.trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    fit_metrics = scalar_metrics(trainer.callback_metrics, ("val/", "train/"))
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {**fit_metrics, **scalar_metrics(trainer.callback_metrics, ("test/",))}
    metrics["train_time_s"] = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:
        record = {
            "dataset_info": info.to_dict(),
            "autoencoder": cfg.autoencoder,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
        }
        artifact.commit({"state_dict": net.state_dict(), "hparams": dict(net.hparams)}, record, metrics)
    log.info("autoencoder test/loss = %.5f", metrics.get("test/loss", float("nan")))
    return StageResult("autoencoder", artifact, False, metrics, time.perf_counter() - started)
