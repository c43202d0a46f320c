"""Any `root/<class>/*.png|jpg` tree (e.g. apple2orange), resized and held in memory."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image

from ganmex.data.base import SplitImageDataModule
from ganmex.data.errors import DataFileError, DatasetNotFoundError
from ganmex.data.fingerprint import tree_fingerprint
from ganmex.data.items import resize_square
from ganmex.data.tensor_dataset import ImageTensorDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

log = logging.getLogger(__name__)


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: `1, 2, 10`, not the text order `1, 10, 2`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def class_folders(root: Path) -> list[str]:
    """The non-hidden sub-folders of `root`, in natural order (class index = position)."""
    return sorted(
        (p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key
    )


def image_files(folder: Path) -> list[Path]:
    """The non-hidden image files directly in `folder`, sorted."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


class ImageFolderDataModule(SplitImageDataModule):
    """One sub-folder per class; classes are the folder names in natural order (`1, 2, 10`), logged
    when the images load. A class folder without images is refused.

    Hidden entries (names starting with '.', e.g. `.ipynb_checkpoints/`, `.DS_Store`) are ignored.
    """

    name = "image_folder"

    def __init__(self, root: str, **kwargs) -> None:
        self.root = Path(root)
        if "class_names" not in kwargs or not kwargs["class_names"]:
            kwargs["class_names"] = self._class_folders()
        kwargs.setdefault("num_classes", len(kwargs["class_names"]))
        super().__init__(**kwargs)

    def _class_folders(self) -> list[str]:
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"image folder {self.root} does not exist; set dataset.root to a folder with one "
                f"sub-folder of images per class"
            )
        names = class_folders(self.root)
        if len(names) < 2:
            raise DatasetNotFoundError(f"{self.root} needs at least two class sub-folders, found {names}")
        empty = [name for name in names if not image_files(self.root / name)]
        if empty:  # it would train silently as a class that never appears
            raise DatasetNotFoundError(
                f"class folder {self.root / empty[0]} holds no images with suffixes "
                f"{', '.join(IMAGE_SUFFIXES)}; add its images or remove the folder"
            )
        return names

    def load_all(self) -> ImageTensorDataset:
        mode = ImageReadMode.GRAY if self.channels == 1 else ImageReadMode.RGB
        log.info(
            "image folder %s: classes %s",
            self.root,
            ", ".join(f"{i}={name}" for i, name in enumerate(self.class_names)),
        )
        images, labels = [], []
        for label, name in enumerate(self.class_names):
            for path in image_files(self.root / name):
                image = self._decode(path, mode)
                image = resize_square(image, self.image_size)
                images.append(image)
                labels.append(label)
        if not images:
            raise DatasetNotFoundError(f"no images with suffixes {IMAGE_SUFFIXES} under {self.root}")
        return ImageTensorDataset(torch.stack(images), torch.tensor(labels))

    @staticmethod
    def _decode(path: Path, mode: ImageReadMode) -> torch.Tensor:
        try:
            return decode_image(str(path), mode=mode)
        except (RuntimeError, ValueError, OSError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataFileError(
                f"image {path} cannot be decoded ({detail}); delete or replace that file"
            ) from error

    @classmethod
    def content_identity(cls, cfg: dict) -> dict:
        """A fingerprint of the image files (names, sizes, mtimes) next to `root` in artifact hashes."""
        root = Path(cfg["root"])
        if not root.is_dir():
            return {"fingerprint": "absent"}
        identity = {"fingerprint": tree_fingerprint(root, IMAGE_SUFFIXES)}
        names = class_folders(root)
        if names != sorted(names):  # numbered classes: the label mapping differs from the text order
            identity["class_order"] = names
        return identity
