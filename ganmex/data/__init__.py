"""Datasets as LightningDataModules producing float NCHW pixels in [0, 1]."""

from ganmex.data.base import DatasetInfo, ImageDataModule
from ganmex.data.errors import DatasetNotFoundError

__all__ = ["DatasetInfo", "DatasetNotFoundError", "ImageDataModule"]
