"""MNIST, FashionMNIST, SVHN and CIFAR-10 through torchvision, with offline-friendly errors."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torchvision import datasets

from ganmex.data.base import ImageDataModule
from ganmex.data.errors import DatasetNotFoundError
from ganmex.data.fingerprint import content_sha256, file_md5
from ganmex.data.idx import find_idx, read_idx
from ganmex.data.tensor_dataset import ImageTensorDataset

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# image side of each set: torchvision sets are loaded as they are, not resized
NATIVE_SIZE = {"mnist": 28, "fashion_mnist": 28, "svhn": 32, "cifar10": 32}
# what the identity records for files that are (or will be, when downloaded) torchvision's release
OFFICIAL = "official torchvision release"
_SOURCES = {
    "mnist": (datasets.MNIST, "MNIST"),
    "fashion_mnist": (datasets.FashionMNIST, "FashionMNIST"),
    "svhn": (datasets.SVHN, "SVHN"),
    "cifar10": (datasets.CIFAR10, "CIFAR10"),
}


def _dataset_url(cls: type) -> str:
    """A URL the torchvision class would download from, to test the network quickly."""
    if hasattr(cls, "mirrors"):
        return cls.mirrors[0]
    if hasattr(cls, "url"):
        return cls.url
    return next(iter(cls.split_list.values()))[0]


def network_reachable(url: str, timeout_s: float) -> bool:
    """Can we open a TCP connection to the URL's host? Keeps offline failures fast."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset, loaded fully into memory as uint8.

    MNIST-family sets are also read straight from IDX files in `<root>/<Name>/raw/`, so the
    test split works when only the `t10k-*` files are present.
    """

    def __init__(
        self, name: str, root: str, download: bool = False, network_timeout_s: float = 5.0, **kwargs
    ) -> None:
        if name not in _SOURCES:
            raise ValueError(f"unknown torchvision dataset {name!r}; choose one of {sorted(_SOURCES)}")
        super().__init__(**kwargs)
        self.name = name
        self.root = Path(root)
        self.download = download
        self.network_timeout_s = network_timeout_s

    @classmethod
    def native_image_size(cls, cfg: dict) -> int | None:
        return NATIVE_SIZE.get(cfg.get("name"))

    @classmethod
    def content_identity(cls, cfg: dict) -> dict:
        """Which files the data comes from, so it is not the `root` path that artifact hashes follow.

        MNIST-style IDX files read from `<root>/<Name>/raw/` are recorded as the official release when
        their `.gz` matches torchvision's md5 and holds the same content as the file read, else by a
        sha256 of their content; absent files can only come from torchvision's md5-checked download.
        SVHN and CIFAR-10 are md5-checked by torchvision on every load, so they are always official.
        """
        name = cfg["name"]
        if name not in ("mnist", "fashion_mnist"):
            return {"files": OFFICIAL, "replaces_root": True}
        source, folder_name = _SOURCES[name]
        official = dict(source.resources)
        raw = Path(cfg["root"]) / folder_name / "raw"
        files = {}
        for stem in (s for pair in _IDX_FILES.values() for s in pair):
            read = find_idx(raw, stem)
            gz = raw / f"{stem}.gz"
            if read is None:
                files[stem] = OFFICIAL
            elif (
                gz.is_file()
                and file_md5(gz) == official.get(gz.name)
                and (read == gz or content_sha256(read) == content_sha256(gz))
            ):
                files[stem] = OFFICIAL
            else:
                files[stem] = f"sha256:{content_sha256(read)}"
        return {"files": files, "replaces_root": True}

    @property
    def folder(self) -> Path:
        return self.root / _SOURCES[self.name][1]

    def _missing(self, split: str, detail: str) -> DatasetNotFoundError:
        hint = (
            f"Either run with dataset.download=true on a machine with network access, put the files "
            f"under {self.folder}/ (for MNIST-style sets: {self.folder}/raw/*-ubyte[.gz]), "
            f"set paths.data_dir to where they are, or use the embedded digits: dataset=mnist_embedded"
        )
        return DatasetNotFoundError(
            f"{self.name} {split} split not found under {self.folder}: {detail}. {hint}"
        )

    def _load_idx(self, split: str) -> ImageTensorDataset | None:
        images_stem, labels_stem = _IDX_FILES[split]
        raw = self.folder / "raw"
        images_path, labels_path = find_idx(raw, images_stem), find_idx(raw, labels_stem)
        if images_path is None or labels_path is None:
            return None
        images = read_idx(images_path).unsqueeze(1)
        return ImageTensorDataset(images, read_idx(labels_path).long())

    def _load_torchvision(self, split: str, absent: str) -> ImageTensorDataset:
        cls = _SOURCES[self.name][0]
        if not self.download:
            raise self._missing(split, f"{absent} and dataset.download=false")
        if not network_reachable(_dataset_url(cls), self.network_timeout_s):
            raise self._missing(split, f"{absent} and the download server cannot be reached")
        kwargs = {"split": split} if self.name == "svhn" else {"train": split == "train"}
        root = str(self.folder) if self.name == "svhn" else str(self.root)
        try:
            source = cls(root, download=True, **kwargs)
        except (RuntimeError, OSError) as error:
            raise self._missing(split, str(error).strip().rstrip(".")) from error
        data = source.data
        if isinstance(data, np.ndarray):
            data = torch.from_numpy(data)
        if data.ndim == 3:
            data = data.unsqueeze(1)
        elif data.shape[-1] in (1, 3):
            data = data.permute(0, 3, 1, 2)
        labels = getattr(source, "targets", None)
        if labels is None:
            labels = source.labels
        return ImageTensorDataset(data.contiguous(), torch.as_tensor(np.asarray(labels)).long())

    def _load(self, split: str) -> ImageTensorDataset:
        absent = "the files are absent"
        if self.name in ("mnist", "fashion_mnist"):
            found = self._load_idx(split)
            if found is not None:
                return found
            other = "test" if split == "train" else "train"
            if self._load_idx(other) is not None:
                stems = " and ".join(f"{s}[.gz]" for s in _IDX_FILES[split])
                absent = f"only the {other} files are present in {self.folder / 'raw'}; {stems} are missing"
        return self._load_torchvision(split, absent)

    def load_train(self) -> ImageTensorDataset:
        return self._load("train")

    def load_test(self) -> ImageTensorDataset:
        return self._load("test")
