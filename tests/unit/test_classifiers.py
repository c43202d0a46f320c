"""Classifier shapes, normalisation-inside-the-net, and size errors."""

from __future__ import annotations

import pytest
import torch

from ganmex.models import classifiers


@pytest.mark.parametrize("arch", ["mnist_cnn", "svhn_cnn", "cifar_cnn", "resnet18"])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_logits_and_features_shapes(arch, channels, size):
    net = getattr(classifiers, arch)(channels, 10, size, [0.5] * channels, [0.25] * channels)
    x = torch.rand(2, channels, size, size)
    assert net(x).shape == (2, 10)
    assert net.features(x).ndim == 2 and net.features(x).shape[0] == 2


def test_normalisation_is_the_first_layer():
    net = classifiers.mnist_cnn(1, 10, 28, [0.25], [0.5]).eval()
    x = torch.rand(1, 1, 28, 28)
    assert torch.allclose(net.normalize(x), (x - 0.25) / 0.5)
    assert torch.allclose(net(x), net.head(net.body((x - 0.25) / 0.5)))


def test_mnist_cnn_follows_the_ganmex_layout():
    net = classifiers.mnist_cnn(1, 10, 28, [0.0], [1.0])
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (6, 6), (2, 2)),
        (64, (6, 6), (2, 2)),
    ]
    relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 3 and len({id(r) for r in relus}) == 3 and not any(r.inplace for r in relus)


def test_too_small_image_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="image size 4 is too small for classifier=mnist_cnn"):
        classifiers.mnist_cnn(1, 10, 4, [0.0], [1.0])
