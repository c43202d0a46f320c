"""What every evaluate mode opens with: the classifier, the device, the test split and what baselines need.

`EvalContext.open(cfg)` loads the finished classifier artifact, picks the device by one rule, builds the
evaluation dataset (`eval_dataset`, else `dataset`) and checks that the two fit each other. Generator,
training images and oracle load on first use, so a mode pays only for what it touches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from ganmex.artifacts import Artifact
from ganmex.data.base import DatasetInfo, ImageDataModule
from ganmex.data.info import check_compatible
from ganmex.errors import ConfigError, check_choice
from ganmex.explain.baselines import BaselineContext
from ganmex.explain.methods import AttributionMethod, applicable_methods, build_methods
from ganmex.explain.pairs import SOURCES, STRATEGIES, PairSelector
from ganmex.explain.target import CONTRASTS
from ganmex.models.loading import load_classifier, load_counterfactual_generator
from ganmex.pipeline.build import build_datamodule
from ganmex.pipeline.classifier_stage import classifier_artifact, oracle_artifact
from ganmex.training.soundness import check_finite_module

log = logging.getLogger(__name__)


DEVICE_SETTINGS = ("auto", "cpu", "cuda")


def pick_device(cfg: DictConfig, setting: str = "auto", key: str = "explain.device") -> torch.device:
    """`setting` when it names a device; `auto` = CUDA when present and the trainer group allows it."""
    kind = str(setting).split(":")[0]
    check_choice(key, kind, DEVICE_SETTINGS)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={setting} but this machine has no CUDA device; use {key}=auto or cpu")
    if setting != "auto":
        return torch.device(setting)
    wants_gpu = cfg.trainer.get("accelerator", "auto") != "cpu"
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def eval_dataset_config(cfg: DictConfig) -> DictConfig:
    """The dataset to evaluate on: `eval_dataset` when set, else the training dataset."""
    return cfg.get("eval_dataset") or cfg.dataset


def gan_configured(cfg: DictConfig) -> bool:
    return cfg.get("gan") is not None and cfg.gan.get("name") != "none"


def run_contrast(cfg: DictConfig) -> str:
    """The run's `contrast`: the scalar every method explains and every metric scores."""
    return check_choice("contrast", cfg.get("contrast", "one_vs_one"), CONTRASTS)


def pair_selector(cfg: DictConfig) -> PairSelector:
    """The run's `pairs` node as the selector that report, explain and the attributions grid share."""
    node = cfg.get("pairs") or {}
    strategy, source = node.get("strategy", "runner_up"), node.get("source", "predicted")
    check_choice("pairs.strategy", strategy, STRATEGIES)
    check_choice("pairs.source", source, SOURCES)
    return PairSelector(strategy, source, node.get("fixed_target"), int(cfg.get("seed", 0)))


@dataclass
class EvalContext:
    """The finished classifier and the evaluation data, shared by every evaluate mode."""

    cfg: DictConfig
    artifact: Artifact
    classifier: torch.nn.Module
    trained_info: DatasetInfo
    datamodule: ImageDataModule
    test: Dataset
    device: torch.device
    _baseline_context: BaselineContext | None = field(default=None, repr=False)

    @classmethod
    def open(cls, cfg: DictConfig, device: str = "auto") -> EvalContext:
        artifact = classifier_artifact(cfg)
        if not artifact.exists:
            raise FileNotFoundError(
                f"no finished classifier artifact at {artifact.path}; train it first with "
                f"`python train.py stage=classifier` using the same dataset/classifier overrides"
            )
        chosen = pick_device(cfg, device)
        trained = DatasetInfo.from_dict(artifact.config()["dataset_info"])
        datamodule = build_datamodule(eval_dataset_config(cfg))
        check_compatible(trained, datamodule.info)
        classifier = load_classifier(artifact.path, chosen)
        check_finite_module(classifier, f"classifier artifact {artifact.path}")
        return cls(cfg, artifact, classifier, trained, datamodule, datamodule.dataset("test"), chosen)

    def methods(self, config: DictConfig | None, **overrides: Any) -> dict[str, AttributionMethod]:
        """The configured attribution methods that can explain this classifier; each one that cannot
        (DeepLIFT on a TorchScript model, ...) is left out with one logged line."""
        methods = build_methods(config, **overrides)
        example = self.test[0][0].unsqueeze(0).to(self.device)
        return applicable_methods(methods, self.classifier, example)

    @property
    def name(self) -> str:
        return self.datamodule.info.name

    def images(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(images on the device, labels on the CPU) of these test-split indices."""
        bad = [i for i in indices if not 0 <= i < len(self.test)]
        if bad or not indices:
            raise ConfigError(
                f"indices {bad or indices} are not in [0, {len(self.test)}) of {self.name}'s test set"
            )
        images = torch.stack([self.test[i][0] for i in indices]).to(self.device)
        labels = torch.stack([torch.as_tensor(self.test[i][1]) for i in indices])
        return images, labels

    def generator(self):
        """The GANMEX generator of this config's gan artifact (or `gan.artifact=<dir>`)."""
        from ganmex.pipeline.gan_stage import gan_artifact

        if not gan_configured(self.cfg):
            raise ConfigError(
                "the ganmex baseline needs a GAN: set gan=stargan (or gan.artifact=<gan-<hash> dir>)"
            )
        artifact = gan_artifact(self.cfg)
        if not artifact.exists:
            raise FileNotFoundError(
                f"no finished gan artifact at {artifact.path}; train it with `python train.py stage=gan` "
                f"(same overrides) or drop ganmex from baselines"
            )
        trained_against = artifact.config().get("classifier_artifact")
        if trained_against and Path(trained_against).name != self.artifact.path.name:
            log.warning(
                "the GAN %s was trained against classifier %s, but the classifier explained here is %s: "
                "its counterfactuals may not be valid for this classifier",
                artifact.path,
                Path(trained_against).name,
                self.artifact.path.name,
            )
        return load_counterfactual_generator(artifact.path, self.device)

    def oracle(self) -> torch.nn.Module | None:
        """The independent judge of this config (`oracle=none`: None)."""
        if self.cfg.get("oracle") is None or self.cfg.oracle.get("name") == "none":
            return None
        artifact = oracle_artifact(self.cfg)
        if not artifact.exists:
            log.warning("no finished oracle artifact at %s: oracle scores are left out", artifact.path)
            return None
        return load_classifier(artifact.path, self.device)

    def baseline_context(self, needs: set[str]) -> BaselineContext:
        """Training images, the classifier and the generator, loaded once and only when needed."""
        context = self._baseline_context or BaselineContext(classifier=self.classifier, device=self.device)
        if "train_images" in needs and context.train_images is None:
            same_data = self.cfg.get("eval_dataset") is None  # the datamodule already holds the train split
            train = (self.datamodule if same_data else build_datamodule(self.cfg.dataset)).dataset("train")
            images = train.images
            context.train_images = images.float() / 255.0 if images.dtype == torch.uint8 else images
            context.train_labels = train.labels
        if "generator" in needs and context.generator is None:
            context.generator = self.generator()
        self._baseline_context = context
        return context
