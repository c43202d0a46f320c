"""Your own `torch.utils.data.Dataset` class as the data: `dataset=torch_dataset`.

For data that is not in class folders: `dataset.source._target_` names the class and the other `source`
keys are its keyword arguments, as torchvision's `MNIST(root, train=..., transform=...)` is called.
`train_args`/`test_args` are added for the training and the test set (torchvision: `train: true/false`,
SVHN: `split: train/test`), and validation is carved out of training by `val_fraction`. A class without a
split argument sets both to null: its one set is split stratified by `val_fraction` and `test_fraction`.
Items are read once into memory as uint8 (ganmex/data/items.py), as every ganmex dataset is.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra.utils import instantiate

from ganmex.data.base import ImageDataModule, SplitImageDataModule
from ganmex.data.errors import DatasetNotFoundError
from ganmex.data.fingerprint import tensors_sha256
from ganmex.data.items import load_items
from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.errors import ConfigError
from ganmex.targets import locate_target

TARGET_KEY = "dataset.source._target_"
# keys of `source` that Hydra reads itself, never passed to the class
HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
ONE_SET = (
    "if the class has no split argument, set dataset.train_args=null dataset.test_args=null (its one set is "
    "split by dataset.val_fraction and dataset.test_fraction)"
)


class DatasetClassDataModule(SplitImageDataModule):
    """Train/val/test from a user's Dataset class; its config is not instantiated recursively, so that
    `source` reaches here as a plain mapping and the class is called once per split."""

    name = "torch_dataset"

    def __init__(
        self,
        source: Mapping[str, Any],
        train_args: Mapping[str, Any] | None = None,
        test_args: Mapping[str, Any] | None = None,
        augment: Sequence[Any] = (),
        **kwargs: Any,
    ) -> None:
        if (train_args is None) != (test_args is None):
            raise ConfigError(
                f"dataset.train_args={train_args} but dataset.test_args={test_args}: set both to the class's "
                f"split argument (e.g. {{train: true}} and {{train: false}}) or both to null (one set, split "
                f"by dataset.val_fraction and dataset.test_fraction)"
            )
        self.target = str(source.get("_target_"))
        self.source_class = locate_target(source.get("_target_"), TARGET_KEY)
        self.arguments = {k: v for k, v in source.items() if k not in HYDRA_KEYS}
        self.train_args = dict(train_args) if train_args is not None else None
        self.test_args = dict(test_args) if test_args is not None else None
        self._check_arguments()
        modules = [instantiate(a) if isinstance(a, Mapping) else a for a in augment]
        super().__init__(augment=modules, **kwargs)

    # -- the class and its arguments ----------------------------------------------------------
    def _check_arguments(self) -> None:
        """Keywords the class does not take fail here, before anything loads, naming the key."""
        try:
            parameters = inspect.signature(self.source_class).parameters.values()
        except (TypeError, ValueError):  # builtins and C extensions may have no signature: let the call tell
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return
        accepted = {p.name for p in parameters}
        split_keys = sorted({*(self.train_args or {}), *(self.test_args or {})} - accepted)
        if split_keys:
            raise ConfigError(
                f"{TARGET_KEY}={self.target} takes no argument {split_keys[0]!r} (from dataset.train_args/"
                f"test_args); name its split argument there, e.g. dataset.train_args={{split: train}}, or "
                f"{ONE_SET}"
            )
        unknown = sorted(set(self.arguments) - accepted)
        if unknown:
            raise ConfigError(
                f"{TARGET_KEY}={self.target} takes no argument {unknown[0]!r}; remove dataset.source."
                f"{unknown[0]} or fix its name (it takes: {', '.join(sorted(accepted))})"
            )

    def build_source(self, extra: Mapping[str, Any]) -> Any:
        """The user's dataset for one split; nested `_target_` nodes (a transform) are instantiated."""
        arguments = (
            instantiate({**self.arguments, **extra}, _convert_="all") if self.arguments or extra else {}
        )
        shown = ", ".join(f"{k}={v!r}" for k, v in {**self.arguments, **extra}.items())
        try:
            return self.source_class(**arguments)
        except (OSError, RuntimeError) as error:  # e.g. torchvision's "Dataset not found"
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DatasetNotFoundError(f"{self.target}({shown}) failed: {detail}") from error

    def _load(self, extra: Mapping[str, Any], split: str) -> ImageTensorDataset:
        where = f"{self.target} ({split})"
        return load_items(self.build_source(extra), self.image_size, self.channels, where)

    @property
    def official_splits(self) -> bool:
        """Whether the class gives its own test set (train_args/test_args set)."""
        return self.test_args is not None

    def load_sets(self) -> dict[str, ImageTensorDataset]:
        """What the class yields: its train and test sets, or its one set ("all")."""
        if self.official_splits:
            return {"train": self.load_train(), "test": self.load_test()}
        return {"all": self.load_all()}

    @classmethod
    def content_identity(cls, cfg: dict) -> dict:
        """A sha256 of the pixels and labels the class yields: the class path and its arguments are in
        the config, but the files or code behind them can change while those stay the same."""
        module = cls(**{k: v for k, v in cfg.items() if not k.startswith("_")})
        sets = module.load_sets()
        return {
            "sha256": tensors_sha256(
                [t for name in sorted(sets) for t in (sets[name].images, sets[name].labels)]
            )
        }

    # -- loading ---------------------------------------------------------------------------------
    def load_all(self) -> ImageTensorDataset:
        return self._load({}, "all")

    def load_train(self) -> ImageTensorDataset:
        return self._load(self.train_args, "train") if self.official_splits else super().load_train()

    def load_test(self) -> ImageTensorDataset:
        return self._load(self.test_args, "test") if self.official_splits else super().load_test()

    def setup(self, stage: str | None = None) -> None:
        """An official test set: val is carved out of train (ImageDataModule); else all three are carved
        out of the one set (SplitImageDataModule)."""
        if self.official_splits:
            ImageDataModule.setup(self, stage)
        else:
            super().setup(stage)

    def checked(self, data: ImageTensorDataset, split: str) -> ImageTensorDataset:
        """Labels in [0, num_classes) (the base check), and the data to train on holds every class."""
        data = super().checked(data, split)
        if split == "test":
            return data
        present = torch.unique(data.labels)
        if len(present) != self.num_classes:
            shown = present[:12].tolist()
            fix = (
                f"set dataset.num_classes={len(present)}"
                if torch.equal(present, torch.arange(len(present)))
                else "relabel them as 0..k-1 and set dataset.num_classes=k"
            )
            raise ConfigError(
                f"dataset.num_classes={self.num_classes} but the {split} data of {self.target} holds "
                f"{len(present)} classes (labels {shown}); {fix}"
            )
        return data
