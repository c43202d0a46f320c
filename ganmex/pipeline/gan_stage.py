"""Stage 2: the GANMEX generator, trained against the finished (frozen) classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ganmex.artifacts import Artifact
from ganmex.data.base import ImageDataModule
from ganmex.models.loading import load_classifier
from ganmex.pipeline.build import build_datamodule
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.stage import TrainedStage, check_fits_data
from ganmex.report.gan_grid import CounterfactualGridCallback
from ganmex.training.checkpoint_callbacks import StepCheckpoint
from ganmex.training.ganmex import GanmexModule, ganmex_module_from_config
from ganmex.training.precision import FP32, resolve_precision
from ganmex.training.soundness import check_finite_module

GRID_PNG = "gan_grid.png"


class GanStage(TrainedStage):
    """Reads `cfg.gan` (conf/gan/*.yaml): generator and critic (`_target_`), `loss` (GanmexModule's
    loss keyword arguments), optimizers, `batch_size`, `ema_decay`, `lr_decay_from`, `grid_per_class`,
    trainer budget."""

    section = "gan"
    headline = ("val/validity", "val/proximity_l1")

    def datamodule(self) -> ImageDataModule:
        self.classifier_dir = classifier_artifact(self.cfg)
        if not self.classifier_dir.exists:
            raise FileNotFoundError(
                f"the GAN stage needs a finished classifier at {self.classifier_dir.path}; run "
                f"`python train.py stage=gan` (it trains the classifier first) or set classifier.artifact"
            )
        batch = {"batch_size": self.settings.batch_size} if self.settings.get("batch_size") else {}
        datamodule = build_datamodule(self.cfg.dataset, balanced_batches=True, **batch)
        check_fits_data(self.classifier_dir, datamodule.info, "classifier")  # before the data loads
        datamodule.setup("fit")
        return datamodule

    def build_module(self, datamodule: ImageDataModule) -> GanmexModule:
        classifier = load_classifier(self.classifier_dir.path)
        check_finite_module(classifier, f"classifier artifact {self.classifier_dir.path}")
        return ganmex_module_from_config(self.settings, datamodule.info, classifier)

    def expectations(self) -> dict[str, tuple[float | None, str]]:
        return {"val/validity": (self.settings.get("min_validity"), "gan.min_validity")}

    def trainer_options(self, datamodule: ImageDataModule) -> dict[str, Any]:
        # the balanced sampler already draws per-rank batches (seed offset by rank); Lightning cannot wrap it
        options: dict[str, Any] = {"use_distributed_sampler": False}
        strategy = self.cfg.trainer.get("strategy")
        if isinstance(strategy, str) and strategy in ("ddp", "ddp_spawn"):
            # critic and generator steps each leave the other net's parameters unused
            options["strategy"] = f"{strategy}_find_unused_parameters_true"
        options["precision"] = self.precision()
        return options

    def precision(self) -> str:
        """`gan.trainer.precision` (`auto`: bf16-mixed where the device computes bf16 natively), else
        the trainer group's."""
        configured = self.settings.trainer.get("precision", self.cfg.trainer.get("precision", FP32))
        return resolve_precision(configured, str(self.cfg.trainer.get("accelerator", "cpu")))

    def extra_callbacks(self, work_dir: Path) -> list:
        callbacks: list = [
            CounterfactualGridCallback(
                [Path(self.cfg.paths.output_dir) / GRID_PNG, work_dir / GRID_PNG],
                per_class=self.settings.grid_per_class,
            )
        ]
        every = self.settings.get("checkpoint_every_n_steps")
        if every:  # step-based resume point: GAN epochs are long
            callbacks.append(
                StepCheckpoint(dirpath=work_dir, save_last=True, save_top_k=0, every_n_train_steps=every)
            )
        return callbacks

    def state(self, module: GanmexModule) -> dict:
        ema = module.generator_ema
        return {
            "generator": module.generator.state_dict(),
            "generator_ema": ema.state_dict() if ema is not None else None,
            "critic": module.critic.state_dict(),
        }

    def record(self, datamodule: ImageDataModule) -> dict:
        return {
            **super().record(datamodule),
            "classifier_artifact": str(self.classifier_dir.path),
            "precision": self.precision(),  # what `auto` chose on the machine that trained it
        }


def gan_artifact(cfg: DictConfig) -> Artifact:
    """The hash covers data, GAN config (budget included), seed and the classifier artifact it fools."""
    return GanStage(cfg).artifact()
