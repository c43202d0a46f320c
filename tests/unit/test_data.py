"""Splits, balanced batches, IDX parsing and the dataset error messages."""

from __future__ import annotations

import gzip
import os
import struct

import pytest
import torch

from ganmex.data.embedded import EMBEDDED_SPLITS, MNIST_LAYOUT
from ganmex.data.errors import DataFileError, DatasetNotFoundError
from ganmex.data.idx import read_idx
from ganmex.data.sampler import BalancedBatchSampler
from ganmex.data.splits import stratified_split
from ganmex.data.tensor_dataset import ImageTensorDataset
from ganmex.data.torchvision_sets import TorchvisionDataModule

MNIST_STATS = MNIST_LAYOUT


def test_mnist_layout_constants_match_the_dataset_config(make_config):
    dataset = make_config().dataset
    assert {key: dataset[key] for key in MNIST_LAYOUT} == MNIST_LAYOUT
    assert {key: dataset[key] for key in EMBEDDED_SPLITS} == EMBEDDED_SPLITS


def test_stratified_split_keeps_class_proportions_and_shuffles():
    labels = torch.arange(10).repeat_interleave(50)  # sorted by class, like the embedded digits
    parts = stratified_split(labels, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [400, 50, 50]
    for name, idx in parts.items():
        counts = torch.bincount(labels[idx], minlength=10)
        assert counts.min() == counts.max(), name  # same count of every class
    assert len(torch.cat(list(parts.values())).unique()) == 500  # disjoint and complete
    assert not torch.equal(labels[parts["train"]], labels[parts["train"]].sort().values)  # shuffled
    again = stratified_split(labels, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert torch.equal(again["val"], parts["val"])


def test_stratified_split_rejects_fractions_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(torch.zeros(10), {"train": 0.8, "val": 0.3}, seed=0)


def test_balanced_batches_hold_each_class_equally():
    labels = torch.cat([torch.zeros(100), torch.ones(10), torch.full((30,), 2)]).long()
    sampler = BalancedBatchSampler(labels, batch_size=12, num_batches=5)
    batches = list(sampler)
    assert len(batches) == 5
    for batch in batches:
        assert torch.bincount(labels[batch], minlength=3).tolist() == [4, 4, 4]


def test_balanced_batch_smaller_than_class_count_is_rejected():
    with pytest.raises(ValueError, match="smaller than the 3 classes"):
        BalancedBatchSampler(torch.tensor([0, 1, 2]), batch_size=2)
    with pytest.raises(ValueError, match="batch_size=4 is not a multiple of the 3 classes"):
        BalancedBatchSampler(torch.tensor([0, 1, 2]), batch_size=4)


def _write_idx(path, array: torch.Tensor, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    payload = header + array.to(torch.uint8).numpy().tobytes()
    with (gzip.open if compress else open)(path, "wb") as handle:
        handle.write(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_a_hand_written_file(tmp_path, compress):
    array = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    path = tmp_path / ("x-idx3-ubyte.gz" if compress else "x-idx3-ubyte")
    _write_idx(path, array, compress)
    assert torch.equal(read_idx(path), array)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    _write_idx(path, torch.zeros(2, 3, 3), compress=False)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataFileError, match=r"x-idx3-ubyte is damaged .*truncated"):
        read_idx(path)


def test_dataset_returns_unit_range_floats():
    data = ImageTensorDataset(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8), torch.tensor([0, 1]))
    image, label = data[1]
    assert image.dtype == torch.float32 and image.max() == 1.0 and label == 1


def test_missing_mnist_without_network_names_the_place_and_the_fix(tmp_path):
    dm = TorchvisionDataModule(name="mnist", root=str(tmp_path), download=False, **MNIST_STATS)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.dataset("test")
    message = str(info.value)
    assert str(tmp_path / "MNIST") in message and "dataset=mnist_embedded" in message


def test_only_test_files_present_test_works_and_training_names_missing_files(tmp_path):
    from conftest import SHARED_DATA

    raw = SHARED_DATA / "MNIST" / "raw"
    if not raw.is_dir():
        pytest.skip(f"real MNIST test set not found under {raw}")
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    for f in raw.iterdir():
        os.symlink(f, tmp_path / "MNIST" / "raw" / f.name)
    dm = TorchvisionDataModule(name="mnist", root=str(tmp_path), download=False, **MNIST_STATS)
    test = dm.dataset("test")
    assert len(test) == 10_000 and test.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]  # official class counts
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        dm.dataset("train")


def test_image_folder_loads_and_resizes(tmp_path):
    from torchvision.io import write_png

    from ganmex.data.image_folder import ImageFolderDataModule

    for name, value in (("apple", 40), ("orange", 200)):
        (tmp_path / name).mkdir()
        for i in range(10):
            write_png(torch.full((3, 20, 24), value, dtype=torch.uint8), str(tmp_path / name / f"{i}.png"))
    dm = ImageFolderDataModule(
        root=str(tmp_path), channels=3, image_size=16, mean=[0.5] * 3, std=[0.25] * 3, test_fraction=0.2
    )
    dm.setup()
    assert dm.class_names == ("apple", "orange") and dm.num_classes == 2
    images, labels = next(iter(dm.test_dataloader()))
    assert images.shape[1:] == (3, 16, 16) and len(labels) == 4
    assert torch.allclose(images[labels == 1], torch.tensor(200 / 255), atol=1e-6)


def test_image_folder_missing_root_is_clear(tmp_path):
    from ganmex.data.image_folder import ImageFolderDataModule

    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ImageFolderDataModule(
            root=str(tmp_path / "nope"), channels=3, image_size=16, mean=[0.5] * 3, std=[0.25] * 3
        )


def test_a_datamodule_refusal_is_not_wrapped_by_hydra(make_config, tmp_path):
    """build_datamodule raises the datamodule's own error, which the CLI shows as one line."""
    from ganmex.pipeline.build import build_datamodule

    cfg = make_config(["dataset=image_folder", f"dataset.root={tmp_path / 'nope'}"]).dataset
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        build_datamodule(cfg)
