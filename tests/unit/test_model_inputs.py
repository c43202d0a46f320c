"""The public input contract of Classifier.forward and CounterfactualGenerator.counterfactual."""

from __future__ import annotations

import pytest
import torch

from ganmex.models.classifiers import mnist_cnn
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.inputs import as_pixels, as_targets, noisy_inputs
from ganmex.models.stargan import Generator


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return mnist_cnn(1, 10, 28, [0.1307], [0.3081]).eval()


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return CounterfactualGenerator(Generator(1, num_classes=10, image_size=28, conv_dim=4, n_res=1))


@pytest.fixture(scope="module")
def digits():
    return torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)


def test_uint8_is_divided_by_255(classifier, generator, digits):
    pixels = digits.float() / 255
    assert torch.allclose(classifier(digits), classifier(pixels))
    assert torch.allclose(generator.counterfactual(digits, 4), generator.counterfactual(pixels, 4))
    assert generator.counterfactual(digits, 4).dtype == torch.float32


@pytest.mark.parametrize(
    "scale, low, high", [(lambda x: x * 255, "0", "255"), (lambda x: x * 2 - 1, "-1", "1")]
)
def test_counterfactual_refuses_floats_outside_unit_range_naming_min_max_and_fix(generator, scale, low, high):
    x = scale(torch.linspace(0, 1, 784).view(1, 1, 28, 28))
    with pytest.raises(ValueError) as info:
        generator.counterfactual(x, 1)
    message = str(info.value)
    assert f"holds values in [{low}, {high}]" in message and "divide 0..255 images by 255" in message


def test_classifier_refuses_0_255_floats_but_accepts_attribution_noise(classifier):
    x = torch.linspace(0, 1, 784).view(1, 1, 28, 28)
    with pytest.raises(ValueError, match=r"holds values in \[0, 255\]"):
        classifier(x * 255)
    noisy = x + 0.15 * torch.randn(25, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # SmoothGrad
    with noisy_inputs(0.15):
        assert classifier(noisy).shape == (25, 10)
        with pytest.raises(ValueError, match=r"holds values in \[0, 255\]"):
            classifier(x * 255)


def test_classifier_refuses_minus_one_to_one_input_as_the_readme_says(classifier):
    x = torch.linspace(0, 1, 784).view(1, 1, 28, 28)
    with pytest.raises(
        ValueError, match=r"holds values in \[-1, 1\].*map \[-1, 1\] images with \(x \+ 1\) / 2"
    ):
        classifier(x * 2 - 1)


@pytest.mark.parametrize("method", ["noise_tunnel", "gradient_shap"])
def test_methods_that_add_noise_still_run_on_the_strict_classifier(classifier, method):
    """SmoothGrad and GradientShap with stdevs push [0, 1] pixels outside on purpose: not refused."""
    from ganmex.explain.methods import GradientShap, NoiseTunnel, Saliency

    built = (
        NoiseTunnel(Saliency(), stdevs=0.3, seed=0)
        if method == "noise_tunnel"
        else GradientShap(n_samples=4, stdevs=0.3, seed=0)
    )
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    baselines = torch.zeros(3, 1, 28, 28) if built.baseline_kind == "reference_set" else None
    out = built.attribute(classifier, x, baselines, torch.tensor([0, 1]), torch.tensor([1, 2]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_classifier_in_training_mode_skips_the_range_check():
    net = mnist_cnn(1, 10, 28, [0.1307], [0.3081]).train()
    assert net(torch.full((2, 1, 28, 28), 5.0)).shape == (2, 10)


def test_nan_pixels_are_refused(generator):
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="nan"):
        generator.counterfactual(x, 0)


@pytest.mark.parametrize(
    "target", [2.0, torch.tensor([2.0, 3.0, 4.0]), torch.tensor([2, 3, 4], dtype=torch.int32)]
)
def test_integral_targets_are_accepted(generator, digits, target):
    out = generator.counterfactual(digits, target)
    expected = torch.as_tensor(target).long().expand(3)
    assert torch.allclose(out, generator.counterfactual(digits, expected))


@pytest.mark.parametrize(
    "target, match", [(2.7, r"non-integral values 2\.7; pass class indices"), (True, "bool")]
)
def test_non_integral_or_bool_targets_are_refused(generator, digits, target, match):
    with pytest.raises(ValueError, match=match):
        generator.counterfactual(digits, target)


@pytest.mark.parametrize(
    "target, match",
    [
        (10, r"target holds \[10, 10, 10\], outside the class indices \[0, 9\]"),
        ([1, 2], "one class index or 3"),
    ],
)
def test_targets_out_of_range_or_of_the_wrong_length(generator, digits, target, match):
    with pytest.raises(ValueError, match=match):
        generator.counterfactual(digits, target)


def test_empty_batch_gives_an_empty_result(classifier, generator):
    empty = torch.zeros(0, 1, 28, 28)
    assert generator.counterfactual(empty, 3).shape == (0, 1, 28, 28)
    assert generator.counterfactual(empty, torch.zeros(0, dtype=torch.long)).shape == (0, 1, 28, 28)
    assert classifier(empty).shape == (0, 10)


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"batch N x C x H x W, got shape \(28, 28\)"):
        as_pixels(torch.zeros(28, 28))
    with pytest.raises(ValueError, match="dtype torch.int64"):
        as_pixels(torch.zeros(1, 1, 2, 2, dtype=torch.long))
    assert as_targets(torch.tensor(7), 2, 10).tolist() == [7, 7]
