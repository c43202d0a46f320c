"""The real MNIST test set straight from its IDX files: what scripts, tests and measurements score on."""

from __future__ import annotations

from pathlib import Path

import torch

from ganmex.data.errors import DatasetNotFoundError
from ganmex.data.idx import find_idx, read_idx

TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def load_mnist_test(root: str | Path, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float (N, 1, 28, 28) in [0, 1], labels long (N,)) of the first `n` real test digits
    (all 10,000 when None), read from `<root>/MNIST/raw/t10k-*-ubyte[.gz]`."""
    raw = Path(root) / "MNIST" / "raw"
    images_path, labels_path = find_idx(raw, TEST_IMAGES), find_idx(raw, TEST_LABELS)
    if images_path is None or labels_path is None:
        raise DatasetNotFoundError(
            f"the MNIST test files {TEST_IMAGES}[.gz] and {TEST_LABELS}[.gz] are not in {raw}; "
            f"pass the folder that holds MNIST/raw/ (e.g. ../shared/data)"
        )
    if n is not None and n <= 0:
        raise ValueError(f"n={n} must be a positive number of test digits (or None for all 10,000)")
    images = read_idx(images_path)[:n].unsqueeze(1).float() / 255.0
    return images, read_idx(labels_path)[:n].long()
