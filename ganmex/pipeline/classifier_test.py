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

from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.stage import StageResult

log = logging.getLogger(__name__)


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
    context = EvalContext.open(cfg)
    datamodule, trained, artifact = context.datamodule, context.trained_info, context.artifact
    metrics = accuracy(
        context.classifier, datamodule.test_dataloader(), datamodule.num_classes, context.device
    )
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
