"""Baselines: blur vs torchvision, MDTS vs brute force, ranges/shapes, pair selection by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.transforms.v2.functional import gaussian_blur

from ganmex.explain.baselines import (
    BASELINES,
    MDTS,
    BaselineContext,
    Blur,
    Constant,
    Gaussian,
    MaxDistance,
    baseline_by_name,
    build_baselines,
)
from ganmex.explain.pairs import select_pairs
from ganmex.models.classifiers import Normalize

SIZE = 12
CLASSES = 4


@pytest.fixture(scope="module")
def net():
    """Predicts the brightest quadrant: a known classifier whose classes are balanced on noise."""
    model = nn.Sequential(
        Normalize([0.0], [1.0]), nn.AvgPool2d(SIZE // 2), nn.Flatten(), nn.Linear(4, CLASSES)
    )
    model[-1].weight.data = torch.eye(CLASSES) * 10
    model[-1].bias.data.zero_()
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def context(net):
    from ganmex.models.counterfactual import CounterfactualGenerator
    from ganmex.models.stargan import Generator

    torch.manual_seed(1)
    train = torch.rand(300, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    generator = CounterfactualGenerator(Generator(1, CLASSES, SIZE, conv_dim=4, n_res=1))
    return BaselineContext(classifier=net, train_images=train, generator=generator, batch_size=64)


@pytest.fixture
def batch():
    x = torch.rand(5, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    return x, torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 2])


@pytest.mark.parametrize(("sigma", "kernel_size", "channels"), [(1.0, 5, 1), (2.5, 11, 3), (5.0, 23, 1)])
def test_blur_matches_torchvision(sigma, kernel_size, channels):
    x = torch.rand(2, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    ours = Blur(sigma=sigma, kernel_size=kernel_size)(x, None, None)
    reference = gaussian_blur(x, [kernel_size, kernel_size], [sigma, sigma])
    assert torch.allclose(ours, reference, atol=1e-6)


def test_blur_default_kernel_covers_three_sigma_and_errors_when_too_large():
    assert Blur(sigma=1.0).radius_for(28, 28) == 3  # kernel 7
    assert Blur(sigma=5.0).radius_for(12, 12) == 11  # kernel 23: capped so reflect padding fits
    with pytest.raises(ValueError, match="kernel_size=25 is too large for 12x12"):
        Blur(sigma=1.0, kernel_size=25)(torch.zeros(1, 1, 12, 12), None, None)
    with pytest.raises(ValueError, match="positive odd integer, got 4"):
        Blur(kernel_size=4)


def test_mdts_is_the_nearest_training_image_of_the_target_class(context, batch):
    x, source, target = batch
    mdts = MDTS(chunk_size=17).setup(context)  # small chunks: the running minimum crosses chunks
    found = mdts(x, source, target)
    train = context.train_images
    predicted = context.classifier(train).argmax(1)
    assert (context.classifier(found).argmax(1) == target).all()
    for i in range(len(x)):
        candidates = train[predicted == target[i]]
        distances = ((candidates - x[i]) ** 2).flatten(1).sum(1)
        nearest = candidates[distances.argmin()]
        assert torch.equal(found[i], nearest), f"row {i}: not the brute-force nearest"
        assert ((found[i] - x[i]) ** 2).sum() <= distances.min() + 1e-5


def test_mdts_missing_class_and_missing_setup_errors(context, batch):
    x, source, _ = batch
    mdts = MDTS().setup(context)
    assert sorted(mdts.bank) == list(range(CLASSES))
    mdts.bank.pop(3), mdts.norms.pop(3)  # as if the classifier never predicted class 3
    with pytest.raises(ValueError, match="assigns no training image to target class 3"):
        mdts(x, source, torch.full((5,), 3))
    with pytest.raises(ValueError, match=r"needs classifier, train_images in its BaselineContext"):
        MDTS().setup(BaselineContext())


def test_every_baseline_is_in_pixel_space_with_the_right_shape(context, batch):
    x, source, target = batch
    config = {name: {"_target_": f"{cls.__module__}.{cls.__qualname__}"} for name, cls in BASELINES.items()}
    baselines = build_baselines(config, context)
    assert set(baselines) >= {
        "zero",
        "constant",
        "blur",
        "uniform",
        "gaussian",
        "mean",
        "max_distance",
        "mdts",
        "training_distribution",
        "ganmex",
    }
    for name, baseline in baselines.items():
        values = baseline(x, source, target)
        expected = (100, *x.shape[1:]) if baseline.kind == "reference_set" else x.shape
        assert values.shape == expected, name
        assert values.min() >= 0 and values.max() <= 1, name


def test_simple_baselines_by_hand(context, batch):
    x, source, target = batch
    assert torch.equal(baseline_by_name("zero")(x, source, target), torch.zeros_like(x))
    assert torch.equal(Constant(0.25)(x, source, target), torch.full_like(x, 0.25))
    assert torch.equal(
        MaxDistance()(torch.tensor([[[[0.2, 0.5, 0.9]]]]), source, target),
        torch.tensor([[[[1.0, 0.0, 0.0]]]]),
    )
    mean = baseline_by_name("mean", context)(x, source, target)
    assert torch.allclose(mean[3], context.train_images.mean(0))
    ganmex = baseline_by_name("ganmex", context)(x, source, target)
    assert torch.equal(ganmex, context.generator.counterfactual(x, target))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(pixel space\), got 2"):
        Constant(2)


def test_noise_baselines_are_seeded_and_clipped(batch):
    x, source, target = batch
    noisy = Gaussian(sigma=0.5, seed=3)
    first, second = noisy(x, source, target), noisy(x, source, target)
    assert torch.equal(first, second) and not torch.equal(
        first, Gaussian(sigma=0.5, seed=4)(x, source, target)
    )
    assert first.min() == 0 and first.max() == 1  # sigma 0.5 pushes pixels past both ends: clipped
    uniform = baseline_by_name("uniform", seed=1)(x, source, target)
    assert 0.4 < uniform.mean() < 0.6 and torch.equal(
        uniform, baseline_by_name("uniform", seed=1)(x, source, target)
    )


def test_training_distribution_is_a_fixed_reference_sample(context, batch):
    x, source, target = batch
    references = baseline_by_name("training_distribution", context, n_samples=7, seed=0)
    drawn = references(x, source, target)
    assert drawn.shape == (7, 1, SIZE, SIZE) and references.kind == "reference_set"
    flat_train = context.train_images.flatten(1)
    assert all((flat_train == row.flatten()).all(1).any() for row in drawn)


def test_pair_selection_by_hand():
    logits = torch.tensor([[5.0, 3.0, 4.0], [0.0, 1.0, 2.0]])
    runner = select_pairs(logits, "runner_up")
    assert runner.source.tolist() == [0, 2] and runner.target.tolist() == [2, 1]
    every = select_pairs(logits, "all")
    assert every.index.tolist() == [0, 0, 1, 1] and every.target.tolist() == [1, 2, 0, 1]
    fixed = select_pairs(logits, "fixed", fixed_target=2)
    assert fixed.index.tolist() == [0] and fixed.target.tolist() == [2]
    labelled = select_pairs(logits, "runner_up", labels=torch.tensor([1, 2]))
    assert labelled.source.tolist() == [1, 2] and labelled.target.tolist() == [0, 1]
    random = select_pairs(torch.zeros(200, 3), "random", seed=5)
    assert (random.target != random.source).all() and set(random.target.tolist()) == {1, 2}
    assert torch.equal(random.target, select_pairs(torch.zeros(200, 3), "random", seed=5).target)
    with pytest.raises(ValueError, match="unknown pair strategy 'best'"):
        select_pairs(logits, "best")
    with pytest.raises(ValueError, match="fixed needs fixed_target in"):
        select_pairs(logits, "fixed")
