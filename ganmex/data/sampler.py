"""Class-balanced batches: every batch holds the same number of images of each class."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class BalancedBatchSampler(Sampler[list[int]]):
    """Yields index batches with `batch_size // num_classes` images per class (a multiple of num_classes).

    The GAN stage needs this: with uniform targets, every source class must be seen equally
    often or the generator learns the frequent classes' style only. Classes are sampled with
    replacement across epochs so that small classes do not end an epoch early.
    Under DDP each rank draws from its own seed offset (`rank`), so ranks see different batches.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        batch_size: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        self.classes = labels.unique(sorted=True)
        if batch_size < len(self.classes):
            raise ValueError(
                f"class-balanced batch_size={batch_size} is smaller than the {len(self.classes)} classes in "
                f"the data; set gan.batch_size (the GAN's balanced batch; dataset.batch_size when it is "
                f"null) to a multiple of {len(self.classes)}"
            )
        if batch_size % len(self.classes):
            raise ValueError(
                f"class-balanced batch_size={batch_size} is not a multiple of the {len(self.classes)} "
                f"classes in the data: a batch holds the same number of images of each class; set "
                f"gan.batch_size to a multiple of {len(self.classes)}"
            )
        self.per_class = batch_size // len(self.classes)
        self.by_class = [torch.nonzero(labels == c).flatten() for c in self.classes]
        self.num_batches = num_batches or max(1, len(labels) // (self.per_class * len(self.classes)))
        self.seed = seed + 1000 * rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        for _ in range(self.num_batches):
            batch = [
                idx[torch.randint(len(idx), (self.per_class,), generator=generator)] for idx in self.by_class
            ]
            merged = torch.cat(batch)
            yield merged[torch.randperm(len(merged), generator=generator)].tolist()
