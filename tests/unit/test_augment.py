"""Batch augmentation: torchvision's per-image affine, drawn per image, applied to a whole batch."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ganmex.data.augment import (
    AugmentingCollate,
    BatchRandomAffine,
    affine_batch,
    split_augmentations,
)
from ganmex.errors import ConfigError


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 28, 20), (3, 32, 32), (1, 20, 31)])
def test_affine_batch_equals_torchvision_affine_per_image(shape):
    """Each image of the batch matches v2.functional.affine with its own parameters (nearest, zero fill).

    Nearest-neighbour sampling can round a source coordinate that lands exactly on a pixel edge either
    way, so a few pixels may differ at some scales; none differ for whole-pixel shifts and turns."""
    gen = torch.Generator().manual_seed(0)
    n = 16
    images = torch.rand(n, *shape, generator=gen)
    degrees = torch.empty(n).uniform_(-30, 30, generator=gen)
    shift = torch.randint(-3, 4, (n, 2), generator=gen).float()
    scale = torch.empty(n).uniform_(0.85, 1.15, generator=gen)
    scale[:4] = 1.0
    out = affine_batch(images, degrees * math.pi / 180, shift, scale)
    for i in range(n):
        ref = TF.affine(
            images[i],
            angle=float(degrees[i]),
            translate=[int(shift[i, 0]), int(shift[i, 1])],
            scale=float(scale[i]),
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.NEAREST,
        )
        mismatch = (ref != out[i]).float().mean().item()
        assert mismatch <= (0.0 if i < 4 else 0.02), (i, mismatch)


def test_every_image_draws_its_own_parameters_within_the_ranges():
    augment = BatchRandomAffine(degrees=10, translate=[0.1, 0.2], scale=[0.9, 1.1])
    torch.manual_seed(0)
    angle, shift, scale = augment.draw(2000, height=20, width=30)
    assert angle.abs().max() <= math.radians(10) and angle.std() > math.radians(4)
    assert torch.equal(shift, shift.round())
    assert shift[:, 0].abs().max() == 3 and shift[:, 1].abs().max() == 4  # 0.1 x 30, 0.2 x 20
    assert 0.9 <= scale.min() and scale.max() <= 1.1
    torch.manual_seed(0)
    digit = torch.zeros(1, 1, 28, 28)
    digit[..., 8:20, 12:16] = 1.0
    out = augment(digit.repeat(8, 1, 1, 1))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8  # eight copies, eight different draws


def test_the_same_seed_gives_the_same_batch():
    augment = BatchRandomAffine(degrees=10, translate=[0.1, 0.1], scale=[0.9, 1.1])
    images = torch.rand(6, 1, 28, 28)
    torch.manual_seed(3)
    first = augment(images)
    torch.manual_seed(3)
    assert torch.equal(first, augment(images))


def test_the_identity_settings_return_the_batch_unchanged():
    images = torch.rand(5, 3, 16, 16)
    assert torch.equal(BatchRandomAffine(degrees=0)(images), images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"degrees": -1}, r"degrees=-1 must be >= 0"),
        ({"degrees": 5, "translate": [0.1]}, r"translate=\[0.1\] must be two fractions"),
        ({"degrees": 5, "scale": [1.2, 0.8]}, r"scale=\[1.2, 0.8\] must be \[low, high\]"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchRandomAffine(**kwargs)


def test_batch_transforms_must_follow_the_per_image_ones():
    flip = torch.nn.Identity()
    affine = BatchRandomAffine(degrees=5)
    assert split_augmentations([flip, affine]) == ([flip], [affine])
    with pytest.raises(ValueError, match=r"lists Identity after a batch transform \(BatchRandomAffine\)"):
        split_augmentations([affine, flip])


def test_the_collate_transforms_the_images_and_keeps_the_labels():
    items = [(torch.ones(1, 8, 8) * i, torch.tensor(i)) for i in range(4)]
    images, labels = AugmentingCollate([BatchRandomAffine(degrees=0, translate=[0.5, 0.5])])(items)
    assert images.shape == (4, 1, 8, 8) and labels.tolist() == [0, 1, 2, 3]
    assert not torch.equal(images, torch.stack([x for x, _ in items]))  # shifted, zero-filled


def test_the_embedded_mnist_train_loader_augments_whole_batches(make_config):
    """The default dataset's training batches go through BatchRandomAffine; val batches are raw."""
    from ganmex.pipeline.build import build_datamodule

    dm = build_datamodule(make_config([]).dataset)
    assert [type(t).__name__ for t in dm.batch_transforms] == ["BatchRandomAffine"]
    assert dm.train_transform is None
    loader = dm.train_dataloader()
    assert isinstance(loader.collate_fn, AugmentingCollate)
    images, labels = next(iter(loader))
    assert images.shape[1:] == (1, 28, 28) and len(images) == len(labels)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert dm.val_dataloader().collate_fn is not loader.collate_fn


def test_a_misordered_augment_list_is_a_config_error(make_config):
    from ganmex.pipeline.build import build_datamodule

    cfg = make_config(
        [
            "dataset.augment=[{_target_: ganmex.data.augment.BatchRandomAffine, degrees: 5},"
            "{_target_: torchvision.transforms.v2.RandomHorizontalFlip}]"
        ]
    ).dataset
    with pytest.raises(ConfigError, match="list them after every per-image transform"):
        build_datamodule(cfg)
