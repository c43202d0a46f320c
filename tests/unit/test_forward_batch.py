"""`forward_batch`: the model sees passes of at most that many images, in near-equal chunks, and the
attributions stay those of one pass (occlusion, IG on real embedded digits)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.explain.methods import IntegratedGradients, Occlusion
from ganmex.explain.target import PairOutput, pair_scalar
from ganmex.models.classifiers import mnist_cnn


class PassSizes(nn.Module):
    """The wrapped model, recording the number of images of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.model(x)


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return mnist_cnn(1, 10, 28, [0.13], [0.31]).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def digits(embedded_mnist):
    x, y = next(iter(embedded_mnist.test_dataloader()))
    return x[:12], y[:12], (y[:12] + 3) % 10


def test_pair_output_splits_into_near_equal_passes(net, digits):
    x, source, target = digits
    recorder = PassSizes(net)
    chunked = PairOutput(recorder, max_batch=5)(x, source, target)
    assert recorder.sizes == [4, 4, 4]  # 12 images in ceil(12 / 5) = 3 equal passes, not 5 + 5 + 2
    torch.testing.assert_close(chunked, pair_scalar(net(x), source, target), rtol=0, atol=1e-6)
    recorder.sizes.clear()
    PairOutput(recorder, max_batch=12)(x, source, target)
    assert recorder.sizes == [12]


@pytest.mark.parametrize(
    "method",
    [
        Occlusion(window=4, stride=2, perturbations_per_eval=64),
        IntegratedGradients(steps=20, method="gausslegendre", internal_batch_size=100),
    ],
    ids=["occlusion", "integrated_gradients"],
)
def test_forward_batch_keeps_the_attributions(net, digits, method):
    x, source, target = digits
    baseline = torch.zeros_like(x)
    whole = method.attribute(net, x, baseline, source, target)
    method.forward_batch = 64
    recorder = PassSizes(net)
    try:
        chunked = method.attribute(recorder, x, baseline, source, target)
    finally:
        method.forward_batch = None
    # x itself is one pass of 12; the perturbed images come in passes of 32-64, never a tiny remainder
    assert max(recorder.sizes) <= 64
    assert min(size for size in recorder.sizes if size != len(x)) >= 32
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_forward_batch_names_the_setting(bad):
    with pytest.raises(ValueError, match=f"forward_batch must be >= 1 or null, got {bad}"):
        Occlusion(forward_batch=bad)
    with pytest.raises(ValueError, match=f"max_batch must be >= 1 or null .*got {bad}"):
        PairOutput(nn.Identity(), max_batch=bad)
