"""Damaged data files name themselves, hidden folders are not classes, labels must fit num_classes,
and the data identity in artifact hashes follows the content."""

from __future__ import annotations

import gzip
import os
import shutil
import struct

import pytest
import torch
from conftest import SHARED_DATA
from torchvision.io import write_png

from ganmex.data.base import SplitImageDataModule
from ganmex.data.errors import DataFileError, DatasetNotFoundError
from ganmex.data.identity import dataset_identity
from ganmex.data.idx import read_idx
from ganmex.data.image_folder import ImageFolderDataModule
from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.data.torchvision_sets import OFFICIAL
from ganmex.errors import ConfigError

FOLDER = dict(channels=3, image_size=8, mean=[0.5] * 3, std=[0.25] * 3, test_fraction=0.2)
FOLDER_TARGET = "ganmex.data.image_folder.ImageFolderDataModule"
MNIST_RAW = SHARED_DATA / "MNIST" / "raw"


def _image_folder(root, classes=("apple", "orange"), per_class=5):
    for value, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            write_png(torch.full((3, 8, 8), 40 * value, dtype=torch.uint8), str(root / name / f"{i}.png"))
    return root


def _idx_bytes(array: torch.Tensor) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    return header + array.to(torch.uint8).numpy().tobytes()


def test_truncated_gz_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(torch.randint(0, 255, (20, 28, 28))))[:-300])
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "download it again" in message and "EOFError" in message


def test_gz_that_is_not_gzip_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html>proxy error page</html>")
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte\.gz is damaged \(BadGzipFile"):
        read_idx(path)


def test_header_shorter_than_its_dimensions_is_damaged_not_a_crash(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(DataFileError, match="header needs 16 bytes, the file holds 6"):
        read_idx(path)


def test_corrupt_png_names_the_file(tmp_path):
    root = _image_folder(tmp_path / "data")
    bad = root / "orange" / "3.png"
    bad.write_bytes(bad.read_bytes()[:40])
    dm = ImageFolderDataModule(root=str(root), **FOLDER)
    with pytest.raises(DataFileError, match=rf"image {bad} cannot be decoded .*delete or replace that file"):
        dm.setup()


def test_hidden_folders_and_files_are_not_classes_or_images(tmp_path):
    root = _image_folder(tmp_path / "data")
    shutil.copytree(root / "apple", root / ".ipynb_checkpoints")
    (root / "apple" / ".broken.png").write_bytes(b"not a png")
    dm = ImageFolderDataModule(root=str(root), **FOLDER)
    assert dm.class_names == ("apple", "orange") and dm.num_classes == 2
    dm.setup()
    total = sum(len(dm.dataset(s)) for s in ("train", "val", "test"))
    assert total == 10  # 5 per class; the hidden copy and the hidden file are ignored


class LabelledDigits(SplitImageDataModule):
    """Four blank images with given labels, for the label range check."""

    name = "toy"

    def __init__(self, labels, **kwargs) -> None:
        super().__init__(channels=1, image_size=4, mean=[0.5], std=[0.5], test_fraction=0.25, **kwargs)
        self.labels = torch.tensor(labels)

    def load_all(self) -> ImageTensorDataset:
        return ImageTensorDataset(torch.zeros(len(self.labels), 1, 4, 4, dtype=torch.uint8), self.labels)


@pytest.mark.parametrize(
    "labels, bad, fix",
    [([0, 1, 2, 3] * 4, "3", "set dataset.num_classes=4"), ([0, 1, -1, 2] * 4, "-1", "labels must be >= 0")],
)
def test_label_out_of_range_names_the_value_the_dataset_and_the_key(labels, bad, fix):
    dm = LabelledDigits(labels, num_classes=3)
    with pytest.raises(ConfigError) as info:
        dm.setup()
    message = str(info.value)
    assert f"toy all data holds label {bad}, outside [0, 2]" in message
    assert "dataset.num_classes=3" in message and fix in message


def test_image_folder_fingerprint_follows_added_and_touched_files(tmp_path):
    root = _image_folder(tmp_path / "data")
    cfg = {"_target_": FOLDER_TARGET, "root": str(root), "image_size": 8, "num_workers": 0}
    first = dataset_identity(cfg)
    assert first["root"] == str(root) and len(first["content"]["fingerprint"]) == 64
    assert dataset_identity({**cfg, "num_workers": 4}) == first  # runtime keys do not count
    write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(root / "apple" / "new.png"))
    added = dataset_identity(cfg)
    assert added["content"] != first["content"]
    stat = (root / "orange" / "0.png").stat()
    os.utime(root / "orange" / "0.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = dataset_identity(cfg)
    assert touched["content"] != added["content"]
    (root / ".ipynb_checkpoints").mkdir()
    write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(root / ".ipynb_checkpoints" / "x.png"))
    assert dataset_identity(cfg) == touched  # hidden folders are not data


def _mnist_cfg(root) -> dict:
    return {
        "_target_": "ganmex.data.torchvision_sets.TorchvisionDataModule",
        "name": "mnist",
        "root": str(root),
        "download": False,
        "network_timeout_s": 5,
        "image_size": 28,
    }


@pytest.mark.skipif(
    not (MNIST_RAW / "t10k-labels-idx1-ubyte.gz").is_file(), reason="needs the real MNIST files"
)
def test_mnist_identity_is_the_official_release_wherever_it_lives_and_changes_with_content(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_RAW / name, raw / name)
    here, shared = dataset_identity(_mnist_cfg(tmp_path)), dataset_identity(_mnist_cfg(SHARED_DATA))
    assert here == shared  # root does not count: the checksums stand in for it
    assert "root" not in here and "download" not in here
    assert here["content"]["files"]["t10k-labels-idx1-ubyte"] == OFFICIAL
    # the same content uncompressed (as torchvision leaves it after a download) is still official
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz") as handle:
        (raw / "t10k-labels-idx1-ubyte").write_bytes(handle.read())
    assert dataset_identity(_mnist_cfg(tmp_path)) == here
    # edited labels are not: the identity records their checksum
    data = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    data[-1] = (data[-1] + 1) % 10
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(data))
    edited = dataset_identity(_mnist_cfg(tmp_path))["content"]["files"]["t10k-labels-idx1-ubyte"]
    assert edited.startswith("sha256:") and len(edited) == len("sha256:") + 64


def test_datasets_without_content_identity_keep_their_config_minus_runtime_keys():
    cfg = {"_target_": "ganmex.data.embedded.EmbeddedMNISTDataModule", "num_classes": 10, "num_workers": 3}
    assert dataset_identity(cfg) == {
        "_target_": "ganmex.data.embedded.EmbeddedMNISTDataModule",
        "num_classes": 10,
    }


def test_an_empty_class_folder_is_refused_naming_it(tmp_path):
    root = _image_folder(tmp_path / "data")
    (root / "pear").mkdir()
    with pytest.raises(DatasetNotFoundError, match=rf"class folder {root / 'pear'} holds no images"):
        ImageFolderDataModule(root=str(root), **FOLDER)


def test_numbered_class_folders_are_in_natural_order_and_the_mapping_is_logged(tmp_path, caplog):
    root = _image_folder(tmp_path / "data", classes=("10", "2", "1"), per_class=3)
    dm = ImageFolderDataModule(root=str(root), **FOLDER)
    assert dm.class_names == ("1", "2", "10")
    with caplog.at_level("INFO"):
        dm.setup()
    assert f"image folder {root}: classes 0=1, 1=2, 2=10" in caplog.text
    # the label order is part of the data's identity: a text-ordered artifact is never reused
    assert ImageFolderDataModule.content_identity({"root": str(root)})["class_order"] == ["1", "2", "10"]
    assert "class_order" not in ImageFolderDataModule.content_identity(
        {"root": str(_image_folder(tmp_path / "b"))}
    )
