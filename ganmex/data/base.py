"""The LightningDataModule every dataset shares: splits, loaders, balanced batches, augmentation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from ganmex.data.augment import AugmentingCollate, split_augmentations
from ganmex.data.info import DatasetInfo  # noqa: F401  (re-exported: DatasetInfo lived here)
from ganmex.data.sampler import BalancedBatchSampler
from ganmex.data.splits import stratified_split
from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.errors import ConfigError


class ImageDataModule(L.LightningDataModule, ABC):
    """Float NCHW pixels in [0, 1]; subclasses only say how to load the raw images."""

    name = "images"

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 128,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        balanced_batches: bool = False,
        augment: Sequence[torch.nn.Module] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"dataset.batch_size={batch_size} must be a positive integer")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"dataset.val_fraction={val_fraction} must be in [0, 1)")
        self.num_classes = num_classes
        self.channels = channels
        self.image_size = image_size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.seed = seed
        self.balanced_batches = balanced_batches
        per_image, self.batch_transforms = split_augmentations(list(augment or ()))
        self.train_transform = v2.Compose(per_image) if per_image else None
        self.class_names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
        self.splits: dict[str, ImageTensorDataset] = {}

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name, self.num_classes, self.channels, self.image_size, self.mean, self.std, self.class_names
        )

    @classmethod
    def content_identity(cls, cfg: dict) -> dict:
        """What identifies the data beyond its config (file checksums, ...), for artifact hashes;
        a subclass returns `replaces_root: True` when that makes `root` irrelevant."""
        return {}

    @classmethod
    def native_image_size(cls, cfg: dict) -> int | None:
        """The side of the images when the data is not resized to `image_size` (None: it is resized)."""
        return None

    def checked(self, data: ImageTensorDataset, split: str) -> ImageTensorDataset:
        """`data` after checking its labels are class indices in [0, num_classes)."""
        if len(data.labels):
            low, high = int(data.labels.min()), int(data.labels.max())
            if low < 0 or high >= self.num_classes:
                bad = low if low < 0 else high
                fix = "labels must be >= 0" if bad < 0 else f"set dataset.num_classes={high + 1}"
                raise ConfigError(
                    f"{self.name} {split} data holds label {bad}, outside [0, {self.num_classes - 1}] for "
                    f"dataset.num_classes={self.num_classes}; {fix} or fix the labels"
                )
        return data

    # -- subclasses -------------------------------------------------------------------------
    @abstractmethod
    def load_train(self) -> ImageTensorDataset:
        """All labelled training images (val is carved out of these)."""

    @abstractmethod
    def load_test(self) -> ImageTensorDataset:
        """The held-out test images."""

    # -- Lightning hooks --------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            full = self.checked(self.load_train(), "train")
            parts = stratified_split(
                full.labels, {"train": 1.0 - self.val_fraction, "val": self.val_fraction}, self.seed
            )
            self.splits["train"] = full.subset(parts["train"], self.train_transform)
            self.splits["val"] = full.subset(parts["val"])
        if stage in (None, "test", "predict") and "test" not in self.splits:
            self.splits["test"] = self.checked(self.load_test(), "test")

    def dataset(self, split: str) -> ImageTensorDataset:
        """The split's dataset, loading it if needed."""
        if split not in self.splits:
            self.setup("fit" if split in ("train", "val") else "test")
        if split not in self.splits:
            raise KeyError(f"unknown split {split!r}; choose one of train, val, test")
        return self.splits[split]

    def train_dataloader(self) -> DataLoader:
        data = self.dataset("train")
        collate = AugmentingCollate(self.batch_transforms) if self.batch_transforms else None
        if self.balanced_batches:
            rank = self.trainer.global_rank if self.trainer is not None else 0
            sampler = BalancedBatchSampler(data.labels, self.batch_size, seed=self.seed, rank=rank)
            return DataLoader(data, batch_sampler=sampler, num_workers=self.num_workers, collate_fn=collate)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(data) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self.dataset(split), batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


class SplitImageDataModule(ImageDataModule):
    """For sources without an official test set: train/val/test all carved out stratified."""

    def __init__(self, test_fraction: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"dataset.test_fraction={test_fraction} must be in (0, 1)")
        self.test_fraction = test_fraction

    @abstractmethod
    def load_all(self) -> ImageTensorDataset:
        """Every labelled image; the three splits are carved out of it."""

    def load_train(self) -> ImageTensorDataset:
        return self.dataset("train")

    def load_test(self) -> ImageTensorDataset:
        return self.dataset("test")

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        full = self.checked(self.load_all(), "all")
        fractions = {
            "train": 1.0 - self.val_fraction - self.test_fraction,
            "val": self.val_fraction,
            "test": self.test_fraction,
        }
        parts = stratified_split(full.labels, fractions, self.seed)
        self.splits["train"] = full.subset(parts["train"], self.train_transform)
        self.splits["val"] = full.subset(parts["val"])
        self.splits["test"] = full.subset(parts["test"])
