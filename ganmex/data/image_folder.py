"""Any `root/<class>/*.png|jpg` tree (e.g. apple2orange), resized and held in memory."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image

from ganmex.data.base import SplitImageDataModule
from ganmex.data.errors import DataFileError, DatasetNotFoundError
from ganmex.data.fingerprint import tree_fingerprint
from ganmex.data.items import resize_square
from ganmex.data.tensor_dataset import ImageTensorDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class ImageFolderDataModule(SplitImageDataModule):
    """One sub-folder per class; classes are the sorted folder names.

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
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(names) < 2:
            raise DatasetNotFoundError(f"{self.root} needs at least two class sub-folders, found {names}")
        return names

    def load_all(self) -> ImageTensorDataset:
        mode = ImageReadMode.GRAY if self.channels == 1 else ImageReadMode.RGB
        images, labels = [], []
        for label, name in enumerate(self.class_names):
            files = sorted(
                p
                for p in (self.root / name).iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            for path in files:
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
        return {"fingerprint": tree_fingerprint(root, IMAGE_SUFFIXES) if root.is_dir() else "absent"}
