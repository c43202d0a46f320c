"""`evaluate.py mode=classifier_test`: a finished classifier's accuracy on a test split.

With `eval_dataset=mnist` the classifier trained on `dataset` (e.g. the embedded digits) is scored on
another dataset's test split (the real 10,000 MNIST test digits).
"""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig
from rich.progress import track
from torch.utils.data import DataLoader

from ganmex.data.base import DatasetInfo
from ganmex.errors import ConfigError
from ganmex.models.loading import load_classifier
from ganmex.pipeline.build import build_datamodule
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.stage import StageResult

log = logging.getLogger(__name__)


def eval_dataset_config(cfg: DictConfig) -> DictConfig:
    """The dataset to evaluate on: `eval_dataset` when set, else the training dataset."""
    return cfg.get("eval_dataset") or cfg.dataset


def check_compatible(trained: DatasetInfo, evaluated: DatasetInfo) -> None:
    if (trained.channels, trained.image_size, trained.num_classes) != (
        evaluated.channels,
        evaluated.image_size,
        evaluated.num_classes,
    ):
        raise ConfigError(
            f"classifier trained on {trained.name} ({trained.channels}x{trained.image_size}px, "
            f"{trained.num_classes} classes) cannot be evaluated on {evaluated.name} ({evaluated.channels}x"
            f"{evaluated.image_size}px, {evaluated.num_classes} classes); pick a matching eval_dataset"
        )


@torch.no_grad()
def accuracy(net: torch.nn.Module, loader: DataLoader, num_classes: int, device: torch.device) -> dict:
    correct = torch.zeros(num_classes)
    total = torch.zeros(num_classes)
    for images, labels in track(loader, description="testing classifier", transient=True):
        predictions = net(images.to(device)).argmax(1).cpu()
        total += torch.bincount(labels, minlength=num_classes).float()
        correct += torch.bincount(labels[predictions == labels], minlength=num_classes).float()
    metrics = {"test/acc": float(correct.sum() / total.sum()), "test/n": int(total.sum())}
    metrics.update(
        {f"test/acc_class_{c}": float(correct[c] / total[c]) for c in range(num_classes) if total[c]}
    )
    return metrics


def run_classifier_test(cfg: DictConfig) -> StageResult:
    artifact = classifier_artifact(cfg)
    if not artifact.exists:
        raise FileNotFoundError(
            f"no finished classifier artifact at {artifact.path}; train it first with "
            f"`python train.py stage=classifier` using the same dataset/classifier overrides"
        )
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")
    net = load_classifier(artifact.path, device)
    datamodule = build_datamodule(eval_dataset_config(cfg))
    trained = DatasetInfo.from_dict(artifact.config()["dataset_info"])
    check_compatible(trained, datamodule.info)
    metrics = accuracy(net, datamodule.test_dataloader(), datamodule.num_classes, device)
    metrics["eval_dataset"] = datamodule.info.name
    log.info(
        "classifier %s (trained on %s) test/acc on %s: %.4f over %d images",
        artifact.path.name,
        trained.name,
        datamodule.info.name,
        metrics["test/acc"],
        metrics["test/n"],
    )
    return StageResult("evaluate", artifact, True, metrics)
