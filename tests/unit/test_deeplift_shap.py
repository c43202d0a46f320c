"""DeepLiftShap with each reference run once per call (ganmex/explain/deeplift_shap.py) against Captum's own
DeepLiftShap on the same inputs, references and pairs."""

from __future__ import annotations

import captum.attr as ca
import pytest
import torch
from torch import nn

from ganmex.bench.inputs import embedded_test_images, untrained_mnist_cnn
from ganmex.explain.deeplift_shap import ReferenceDeepLiftShap
from ganmex.explain.hookable import hookable
from ganmex.explain.methods import DeepLiftShap
from ganmex.explain.target import PairOutput

TOLERANCE = 1e-5


def _captum(model: nn.Module, x, refs, source, target, batch_size: int) -> torch.Tensor:
    forward = PairOutput(hookable(model, x))
    dls = ca.DeepLiftShap(forward)
    parts = [
        dls.attribute(
            x[i : i + batch_size].clone().requires_grad_(),
            baselines=refs,
            additional_forward_args=(source[i : i + batch_size], target[i : i + batch_size]),
        ).detach()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(parts)


def test_reference_activations_once_give_captums_attributions_on_mnist_cnn():
    torch.manual_seed(0)
    model = untrained_mnist_cnn()
    x, _ = embedded_test_images(12)
    refs, _ = embedded_test_images(40)
    refs = refs[12:]  # 28 references that are not among the inputs
    logits = model(x)
    source = logits.argmax(1)
    target = logits.masked_fill(nn.functional.one_hot(source, 10).bool(), -1e9).argmax(1)
    ours = DeepLiftShap(batch_size=2).attribute(model, x, refs, source, target)
    theirs = _captum(model, x, refs, source, target, batch_size=2)
    assert ours.shape == x.shape and ours.abs().max() > 1e-3  # not trivially zero
    assert (ours - theirs).abs().max() <= TOLERANCE
    # completeness, DeepLIFT's defining property: each reference's attributions sum to f(x) - f(ref)
    forward = PairOutput(hookable(model, x))
    with torch.no_grad():
        gap = forward(x, source, target)[:, None] - forward(
            refs.repeat(12, 1, 1, 1), source.repeat_interleave(len(refs)), target.repeat_interleave(len(refs))
        ).view(12, len(refs))
    torch.testing.assert_close(ours.flatten(1).sum(1), gap.mean(1), atol=1e-4, rtol=1e-4)


def test_the_references_run_once_per_call():
    model = untrained_mnist_cnn()
    x, _ = embedded_test_images(6)
    refs = torch.rand(10, 1, 28, 28)
    forward = PairOutput(hookable(model, x))
    seen = []
    forward.model.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    attributor = ReferenceDeepLiftShap(forward)
    source, target = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    for i in range(0, 6, 2):
        attributor.attribute(x[i : i + 2], baselines=refs, additional_forward_args=(source[:2], target[:2]))
    assert seen == [10, 20, 20, 20]  # the references once, then only the 2 inputs x 10 references


def test_other_nonlinearities_fall_back_to_captum():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 3)
    )
    assert ReferenceDeepLiftShap(PairOutput(model)).captum is not None
    assert ReferenceDeepLiftShap(PairOutput(untrained_mnist_cnn())).captum is None


@pytest.mark.parametrize("eps", [1e-10])
def test_rescale_is_the_plain_gradient_where_input_and_reference_agree(eps):
    from ganmex.explain.deeplift_shap import _Rescale

    z = torch.tensor([1.0, -1.0, 2.0, 0.5], requires_grad=True)
    z_ref = torch.tensor([1.0, 1.0, -2.0, 0.5])
    out = _Rescale.apply(z, torch.relu(z), z_ref, eps)
    (grad,) = torch.autograd.grad(out.sum(), z)
    # equal inputs: ReLU's own gradient (1 where z > 0); else (relu(z) - relu(z_ref)) / (z - z_ref)
    assert grad.tolist() == [1.0, 0.5, 0.5, 1.0]
