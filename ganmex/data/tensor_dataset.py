"""In-memory image dataset: uint8 NCHW storage, float [0, 1] on access."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset


class ImageTensorDataset(Dataset):
    """Holds images as uint8 (N, C, H, W) so large sets stay small; returns float pixels in [0, 1]."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be NCHW, got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        image = image.float().div(255.0) if image.dtype == torch.uint8 else image.float()
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]

    def subset(self, indices: torch.Tensor, transform=None) -> ImageTensorDataset:
        """A view on some rows, optionally with its own transform (train augmentation only)."""
        return ImageTensorDataset(self.images[indices], self.labels[indices], transform)
