"""Stage 2: train (or reuse) the GANMEX generator against the finished classifier."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import Artifact
from ganmex.models.loading import load_classifier
from ganmex.pipeline.build import build_datamodule, build_trainer
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.stage import StageResult, reused, scalar_metrics, stage_artifact
from ganmex.report.gan_grid import CounterfactualGridCallback
from ganmex.training.ganmex import GanmexModule

log = logging.getLogger(__name__)
GRID_PNG = "gan_grid.png"


def gan_artifact(cfg: DictConfig) -> Artifact:
    """The hash covers data, GAN config (budget included), seed and the classifier artifact it fools."""
    classifier = classifier_artifact(cfg)
    return stage_artifact(cfg, "gan", {"classifier": f"{classifier.stage}-{classifier.key}"})


def build_ganmex_module(cfg: DictConfig, info, classifier) -> GanmexModule:
    """Generator, critic and losses from `cfg.gan`, sized for the dataset."""
    shape = {"channels": info.channels, "num_classes": info.num_classes, "image_size": info.image_size}
    gan = cfg.gan
    return GanmexModule(
        generator=instantiate(gan.generator, **shape),
        critic=instantiate(gan.critic, **shape),
        classifier=classifier,
        num_classes=info.num_classes,
        g_optimizer=instantiate(gan.g_optimizer),
        d_optimizer=instantiate(gan.d_optimizer),
        **OmegaConf.to_container(gan.loss, resolve=True),
        ema_decay=gan.get("ema_decay"),
    )


def _ddp(cfg: DictConfig) -> dict:
    """Critic and generator steps each leave the other net's parameters unused, which DDP must be told."""
    strategy = cfg.trainer.get("strategy")
    if isinstance(strategy, str) and strategy in ("ddp", "ddp_spawn"):
        return {"strategy": f"{strategy}_find_unused_parameters_true"}
    return {}


def run_gan_stage(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    artifact = gan_artifact(cfg)
    if artifact.exists:
        return reused(artifact, started)
    if cfg.gan.get("artifact"):
        raise FileNotFoundError(f"gan.artifact={cfg.gan.artifact} is not a finished artifact")
    classifier_dir = classifier_artifact(cfg)
    if not classifier_dir.exists:
        raise FileNotFoundError(
            f"the GAN stage needs a finished classifier at {classifier_dir.path}; run "
            f"`python train.py stage=gan` (it trains the classifier first) or set classifier.artifact"
        )
    L.seed_everything(cfg.seed, workers=True)
    batch = {"batch_size": cfg.gan.batch_size} if cfg.gan.get("batch_size") else {}
    datamodule = build_datamodule(cfg.dataset, balanced_batches=True, **batch)
    datamodule.setup("fit")
    classifier = load_classifier(classifier_dir.path)
    module = build_ganmex_module(cfg, datamodule.info, classifier)
    work_dir = artifact.begin()
    resume = artifact.resume_checkpoint()
    if resume is not None:
        log.info("resuming GAN training from %s", resume)
    # the balanced sampler already draws per-rank batches (seed offset by rank); Lightning cannot wrap it
    trainer = build_trainer(cfg, "gan", work_dir, cfg.gan.trainer, use_distributed_sampler=False, **_ddp(cfg))
    grid = CounterfactualGridCallback(
        [Path(cfg.paths.output_dir) / GRID_PNG, work_dir / GRID_PNG], per_class=cfg.gan.grid_per_class
    )
    trainer.callbacks.append(grid)
    if cfg.gan.get("checkpoint_every_n_steps"):  # step-based resume point: GAN epochs are long
        trainer.callbacks.append(
            ModelCheckpoint(
                dirpath=work_dir,
                save_last=True,
                save_top_k=0,
                every_n_train_steps=cfg.gan.checkpoint_every_n_steps,
            )
        )
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    metrics = scalar_metrics(trainer.callback_metrics, ("val/", "train/"))
    metrics["train_time_s"] = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:
        record = {
            "dataset_info": datamodule.info.to_dict(),
            "gan": cfg.gan,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "classifier_artifact": str(classifier_dir.path),
        }
        state = {
            "generator": module.generator.state_dict(),
            "generator_ema": module.generator_ema.state_dict() if module.generator_ema is not None else None,
            "critic": module.critic.state_dict(),
        }
        artifact.commit(state, record, metrics)
    log.info(
        "gan val/validity = %.4f, val/proximity_l1 = %.4f",
        metrics.get("val/validity", float("nan")),
        metrics.get("val/proximity_l1", float("nan")),
    )
    return StageResult("gan", artifact, False, metrics, time.perf_counter() - started)
