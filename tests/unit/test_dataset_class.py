"""`dataset=torch_dataset`: a user's Dataset class read through the config, item kinds converted to the
float NCHW contract, and each mistake refused with one line naming the key and the fix."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image
from torch.utils.data import Dataset

from ganmex.data.identity import dataset_identity
from ganmex.errors import ConfigError
from ganmex.pipeline.build import build_datamodule

HERE = __name__  # this module, as pytest imported it
SIDE = 6  # synthetic images are SIDE x SIDE, resized to the configured image_size


def _grey(label: int, classes: int) -> float:
    return label / (classes - 1)


class Synthetic(Dataset):
    """`n` items per class of one `kind`; class c is a flat image of grey level c / (classes - 1)."""

    def __init__(
        self,
        kind: str = "pil",
        n: int = 10,
        classes: int = 2,
        channels: int = 1,
        train: bool = True,
        scale: float = 1.0,
        transform=None,
    ) -> None:
        self.kind, self.classes, self.channels, self.scale = kind, classes, channels, scale
        self.transform = transform
        self.labels = [c for c in range(classes) for _ in range(n if train else n // 2)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        label = self.labels[index]
        level = _grey(label, self.classes) * self.scale
        chw = torch.full((self.channels, SIDE, SIDE), level)
        u8 = chw.mul(255).round().to(torch.uint8)
        hwc = u8.permute(1, 2, 0).numpy()
        image = {
            "pil": lambda: Image.fromarray(hwc[..., 0] if self.channels == 1 else hwc),
            "uint8_chw": lambda: u8,
            "uint8_hw": lambda: u8[0],
            "float_chw": lambda: chw,
            "float_hw": lambda: chw[0],
            "numpy_hw": lambda: hwc[..., 0],
            "numpy_hwc": lambda: hwc,
            "numpy_float_hwc": lambda: hwc.astype(np.float32) / 255,
        }[self.kind]()
        image = self.transform(image) if self.transform else image
        return image, np.int64(label) if index % 2 else label


class FromFile(Dataset):
    """Images and labels from an .npz file: the config stays the same when the file changes."""

    def __init__(self, path: str) -> None:
        with np.load(path) as data:
            self.images, self.labels = data["images"], data["labels"]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.images[index]), int(self.labels[index])


def config(make_config, *overrides: str, target: str = f"{HERE}.Synthetic"):
    return make_config(
        [
            "dataset=torch_dataset",
            f"dataset.source._target_={target}",
            "dataset.num_classes=2",
            "dataset.image_size=4",
            "dataset.batch_size=4",
            *overrides,
        ]
    )


KINDS = ["pil", "uint8_chw", "uint8_hw", "float_chw", "float_hw", "numpy_hw", "numpy_hwc", "numpy_float_hwc"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_item_kind_becomes_float_nchw_pixels_at_image_size(make_config, kind):
    dm = build_datamodule(config(make_config, f"+dataset.source.kind={kind}").dataset)
    dm.setup()
    images, labels = next(iter(dm.test_dataloader()))
    assert images.dtype == torch.float32 and images.shape == (len(labels), 1, 4, 4)
    assert labels.dtype == torch.int64 and sorted(labels.unique().tolist()) == [0, 1]
    for image, label in zip(images, labels, strict=True):
        assert torch.allclose(image, torch.tensor(_grey(int(label), 2)), atol=1 / 255)
    # train/test come from the class's train argument; val is carved out of train
    assert len(dm.dataset("test")) == 10 and len(dm.dataset("train")) + len(dm.dataset("val")) == 20


def test_rgb_items_and_a_class_without_a_split_argument(make_config):
    cfg = config(
        make_config,
        "+dataset.source.channels=3",
        "+dataset.source.n=20",
        "dataset.channels=3",
        "dataset.mean=[0.5,0.5,0.5]",
        "dataset.std=[0.5,0.5,0.5]",
        "dataset.train_args=null",
        "dataset.test_args=null",
        "dataset.val_fraction=0.2",
        "dataset.test_fraction=0.2",
    )
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    sizes = {split: torch.bincount(dm.dataset(split).labels).tolist() for split in ("train", "val", "test")}
    assert sizes == {"train": [12, 12], "val": [4, 4], "test": [4, 4]}  # one set, split stratified
    assert dm.dataset("train")[0][0].shape == (3, 4, 4)


def test_the_identity_follows_the_class_its_arguments_and_what_it_yields(make_config, tmp_path):
    base = dataset_identity(config(make_config).dataset)
    assert base["source"]["_target_"] == f"{HERE}.Synthetic" and "sha256" in base["content"]
    assert dataset_identity(config(make_config, "+dataset.source.n=12").dataset) != base
    assert dataset_identity(config(make_config, "+dataset.source.scale=0.5").dataset) != base

    path = tmp_path / "data.npz"
    cfg = config(
        make_config,
        f"+dataset.source.path={path}",
        "dataset.train_args=null",
        "dataset.test_args=null",
        target=f"{HERE}.FromFile",
    )
    labels = np.arange(2).repeat(10)
    np.savez(path, images=np.zeros((20, 1, SIDE, SIDE), np.uint8), labels=labels)
    before = dataset_identity(cfg.dataset)
    np.savez(path, images=np.full((20, 1, SIDE, SIDE), 9, np.uint8), labels=labels)
    assert dataset_identity(cfg.dataset) != before  # same config, other data: another artifact


def one_line_error(cfg) -> str:
    with pytest.raises(ConfigError) as info:
        build_datamodule(cfg.dataset).setup()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_target_that_cannot_be_imported_is_named(make_config):
    message = one_line_error(config(make_config, target="tests.unit.no_such_module.Digits"))
    assert message.startswith("dataset.source._target_=tests.unit.no_such_module.Digits cannot be imported")
    message = one_line_error(config(make_config, target=f"{HERE}.NoSuchClass"))
    assert f"module {HERE} has no NoSuchClass" in message
    assert "dataset.source._target_ is not set" in one_line_error(make_config(["dataset=torch_dataset"]))


def test_the_cli_names_a_target_that_cannot_be_imported_in_one_line(tmp_path):
    args = ["dataset=torch_dataset", "dataset.source._target_=my_pkg.MyDataset", "logger=none"]
    args += [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run"]
    result = subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr  # Hydra's log handler writes to stdout
    assert result.returncode == 1 and "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert "_target_=my_pkg.MyDataset cannot be imported (No module named 'my_pkg')" in errors[0]


def test_wrong_num_classes_names_the_key_and_the_value(make_config):
    assert "set dataset.num_classes=2" in one_line_error(config(make_config, "dataset.num_classes=10"))
    too_few = one_line_error(config(make_config, "+dataset.source.classes=3"))
    assert "label 2, outside [0, 1] for dataset.num_classes=2; set dataset.num_classes=3" in too_few


def test_wrong_channels_names_the_key_and_the_value(make_config):
    message = one_line_error(config(make_config, "+dataset.source.channels=3"))
    assert message.startswith(f"dataset.channels=1 but item 0 of {HERE}.Synthetic (train)")
    assert message.endswith("set dataset.channels=3")


def test_normalised_floats_and_unknown_arguments_are_refused(make_config):
    message = one_line_error(
        config(make_config, "+dataset.source.kind=float_chw", "+dataset.source.scale=3.0")
    )
    assert "not pixels in [0, 1]" in message and "do not normalise" in message
    message = one_line_error(config(make_config, "+dataset.source.roots=x"))
    assert "takes no argument 'roots'; remove dataset.source.roots" in message
    message = one_line_error(config(make_config, target=f"{HERE}.FromFile"))
    assert (
        "takes no argument 'train'" in message and "dataset.train_args=null dataset.test_args=null" in message
    )
    with pytest.raises(ConfigError, match="or both to null"):
        build_datamodule(config(make_config, "dataset.test_args=null").dataset)


def test_a_transform_given_by_target_is_instantiated(make_config):
    cfg = config(
        make_config,
        "+dataset.source.channels=3",
        "+dataset.source.transform._target_=torchvision.transforms.v2.Grayscale",
    )
    dm = build_datamodule(cfg.dataset)
    assert dm.dataset("test")[0][0].shape == (1, 4, 4)  # RGB items, made grey by the class's transform
