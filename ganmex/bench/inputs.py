"""What the benchmarks run on: a classifier (a finished artifact, else an untrained mnist_cnn, so that a
benchmark runs on a fresh checkout) and real MNIST test digits with their runner-up targets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ganmex.artifacts import newest_artifact
from ganmex.data.mnist_test import load_mnist_test
from ganmex.explain.pairs import select_pairs
from ganmex.models.classifiers import mnist_cnn

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "outputs" / "artifacts"
# the folder holding MNIST/raw/: beside the checkout unless GANMEX_SHARED_DATA says where (as the tests read)
MNIST_DATA = Path(os.environ.get("GANMEX_SHARED_DATA", REPO.parent / "shared" / "data"))
MNIST_MEAN, MNIST_STD = [0.1307], [0.3081]
MNIST_CHANNELS, MNIST_CLASSES, MNIST_SIZE = 1, 10, 28
# read this many times the requested digits, so that enough of them are classified correctly
CANDIDATES_PER_DIGIT = 4


def untrained_mnist_cnn(seed: int = 0) -> nn.Module:
    """mnist_cnn with seeded random weights, frozen in eval mode: a benchmark's model without artifacts."""
    torch.manual_seed(seed)
    net = mnist_cnn(MNIST_CHANNELS, MNIST_CLASSES, MNIST_SIZE, MNIST_MEAN, MNIST_STD)
    return net.eval().requires_grad_(False)


def newest(kind: str, artifacts: str | Path = ARTIFACTS) -> Path | None:
    """The newest finished `<kind>-<hash>` artifact under `artifacts`, or None."""
    try:
        return newest_artifact(artifacts, kind)
    except FileNotFoundError:
        return None


def classifier_or_untrained(
    artifact: str | Path | None = None, artifacts: str | Path = ARTIFACTS, device: str = "cpu"
) -> tuple[nn.Module, str]:
    """(model, description): `artifact`, else the newest finished classifier, else an untrained mnist_cnn."""
    from ganmex.models.loading import load_classifier

    path = Path(artifact) if artifact is not None else newest("classifier", artifacts)
    if path is None:
        log.warning("no finished classifier under %s: using an untrained mnist_cnn", artifacts)
        return untrained_mnist_cnn().to(device), "untrained mnist_cnn (no artifact found)"
    return load_classifier(path, device), f"trained classifier ({path.name})"


def require_classifier(artifact: str | Path | None, artifacts: str | Path = ARTIFACTS) -> Path:
    """`artifact`, else the newest finished classifier; one clear line when there is none."""
    path = Path(artifact) if artifact is not None else newest("classifier", artifacts)
    if path is None:
        raise FileNotFoundError(
            f"no finished classifier artifact under {artifacts}; pass --classifier <dir> or train one with "
            f"`python train.py stage=classifier`"
        )
    return path


def runner_up(model: nn.Module, x: Tensor) -> Tensor:
    """Each image's runner-up class: the target GANMEX's G(x, t) and the evaluation's default pairs use."""
    with torch.no_grad():
        return select_pairs(model(x), "runner_up").target


def correct_digits(model: nn.Module, n: int, root: str | Path = MNIST_DATA) -> tuple[Tensor, Tensor, Tensor]:
    """(x, label, runner-up target) of the first n real MNIST test digits the model classifies correctly."""
    x, y = load_mnist_test(root, CANDIDATES_PER_DIGIT * n)
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    x, y = x[ok][:n], y[ok][:n]
    return x, y, runner_up(model, x)


def embedded_test_images(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(images in [0, 1], labels) of the first n embedded-MNIST test digits (shipped with the repository)."""
    from ganmex.data.embedded import embedded_mnist

    data = embedded_mnist(seed=seed).dataset("test")
    images = data.images[:n]
    images = images.float() / 255.0 if not images.is_floating_point() else images.float()
    return images, data.labels[:n].long()


def gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """d logit_y / d x: the plain gradient the metric benchmarks rank pixels by."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        logit = model(x).gather(1, y.view(-1, 1)).sum()
        return torch.autograd.grad(logit, x)[0]


def saliency(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """|gradient|: ranks background pixels among digit pixels."""
    return gradient(model, x, y).abs()


def grad_x_input(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """gradient x input: black pixels get zero attribution, so a MoRF deletion reaches them last and many
    late states equal their predecessors (what skipping unchanged states saves)."""
    return gradient(model, x, y) * x


GRADIENT_ATTRIBUTIONS = {"saliency": saliency, "grad_x_input": grad_x_input}
