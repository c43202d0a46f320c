"""Stage 1: the classifier that later gets explained, and the oracle: an independent judge trained alike."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.artifacts import Artifact
from ganmex.data.base import ImageDataModule
from ganmex.models.loading import build_classifier
from ganmex.pipeline.stage import TrainedStage
from ganmex.training.classifier import ClassifierModule


class ClassifierStage(TrainedStage):
    """Reads `cfg.classifier` (conf/classifier/*.yaml): net, optimizer, scheduler, trainer budget."""

    section = "classifier"
    headline = ("test/acc",)

    def build_module(self, datamodule: ImageDataModule) -> ClassifierModule:
        self.net = build_classifier(self.settings, datamodule.info)
        scheduler = self.settings.get("scheduler")
        return ClassifierModule(
            self.net,
            datamodule.num_classes,
            optimizer=instantiate(self.settings.optimizer),
            scheduler=instantiate(scheduler) if scheduler else None,
        )

    def state(self, module: ClassifierModule) -> dict:
        return {"state_dict": self.net.state_dict()}

    def expectations(self) -> dict[str, tuple[float | None, str]]:
        key = f"{self.section}.min_val_acc"
        return {"val/acc": (self.settings.get("min_val_acc"), key)}


class OracleStage(ClassifierStage):
    """Reads `cfg.oracle` (conf/oracle/*.yaml): a second classifier of another architecture and seed,
    trained on the training split only, that judges counterfactuals it never saw being made."""

    section = "oracle"

    @property
    def seed(self) -> int:
        return int(self.settings.seed)


def classifier_stage(cfg: DictConfig) -> TrainedStage:
    """The stage that makes this config's classifier: trained, or imported (`classifier=external`)."""
    from ganmex.pipeline.external_classifier_stage import ExternalClassifierStage, is_external

    return ExternalClassifierStage(cfg) if is_external(cfg.classifier) else ClassifierStage(cfg)


def classifier_artifact(cfg: DictConfig) -> Artifact:
    """Where this config's classifier lives: the hash covers data, architecture, budget and seed (for an
    imported model: the file's content, format and input convention)."""
    return classifier_stage(cfg).artifact()


def oracle_artifact(cfg: DictConfig) -> Artifact:
    return OracleStage(cfg).artifact()
