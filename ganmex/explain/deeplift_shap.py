"""DeepLiftShap that runs each reference through the network once per call, not once per input.

Captum's DeepLiftShap pairs every input with every reference and runs each pair as [input; reference] through
the network, so the references' activations are recomputed for every input: half of its forward and backward
passes. On a network whose only hooked nonlinearities are ReLU modules (DeepLIFT's rescale rule:
d out / d in is replaced by (out - out_ref) / (in - in_ref), or the plain gradient where |in - in_ref| < eps),
the references' pre-activations are all the rule needs from them: `ReferenceDeepLiftShap` records them in one
pass over the references and then runs only the inputs, each ReLU's gradient rescaled against the recorded
values. Rows do not interact, so these are Captum's attributions (tests/unit/test_deeplift_shap.py compares
them). Any other nonlinearity Captum has a rule for (max-pooling, sigmoid, softmax, ...) falls back to Captum.
"""

from __future__ import annotations

from typing import Any

import captum.attr as ca
import torch
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import Tensor, nn


class _Rescale(torch.autograd.Function):
    """ReLU's output with DeepLIFT's rescale multiplier as its gradient (Captum's `nonlinear` rule)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, out: Tensor, z_ref: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(z, out, z_ref)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        z, out, z_ref = ctx.saved_tensors
        delta_in, delta_out = z - z_ref, out - torch.relu(z_ref)
        plain = torch.where(z > 0, grad, torch.zeros_like(grad))  # ReLU's own gradient
        return torch.where(abs(delta_in) < ctx.eps, plain, grad * delta_out / delta_in), None, None, None


def relu_only(model: nn.Module) -> bool:
    """Whether every nonlinearity Captum's DeepLIFT hooks in `model` is a ReLU module."""
    return all(type(m) is nn.ReLU for m in model.modules() if type(m) in SUPPORTED_NON_LINEAR)


class ReferenceDeepLiftShap:
    """`attribute(inputs, baselines, additional_forward_args)` as Captum's DeepLiftShap, with the references'
    activations computed once per reference set (the set of the last call is kept)."""

    def __init__(self, forward: nn.Module, eps: float = 1e-10) -> None:
        self.forward = forward
        self.eps = eps
        self.captum = None if relu_only(forward) else ca.DeepLiftShap(forward)
        self.relus = [m for m in forward.modules() if type(m) is nn.ReLU]
        self._references: tuple[Tensor, list[Tensor]] | None = None

    def _pre_activations(self, baselines: Tensor) -> list[Tensor]:
        """Each ReLU's input on the references, in the order of `self.relus`."""
        if self._references is not None and self._references[0] is baselines:
            return self._references[1]
        seen: dict[nn.Module, Tensor] = {}
        hooks = [m.register_forward_pre_hook(lambda m, args: seen.setdefault(m, args[0])) for m in self.relus]
        try:
            with torch.no_grad():
                self.forward.model(baselines)
        finally:
            for hook in hooks:
                hook.remove()
        values = [seen[m] for m in self.relus]
        self._references = (baselines, values)
        return values

    def attribute(self, inputs: Tensor, baselines: Tensor, additional_forward_args: tuple = ()) -> Tensor:
        if self.captum is not None:
            return self.captum.attribute(
                inputs, baselines=baselines, additional_forward_args=additional_forward_args
            )
        n, m = inputs.shape[0], baselines.shape[0]
        references = dict(zip(self.relus, self._pre_activations(baselines), strict=True))

        def rescale(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
            z_ref = references[module]
            return _Rescale.apply(args[0], out, z_ref.repeat((n,) + (1,) * (z_ref.dim() - 1)), self.eps)

        expanded = inputs.detach().repeat_interleave(m, dim=0).requires_grad_()
        extra = tuple(a.repeat_interleave(m, dim=0) for a in additional_forward_args)
        hooks = [module.register_forward_hook(rescale) for module in self.relus]
        try:
            (grads,) = torch.autograd.grad(self.forward(expanded, *extra).sum(), expanded)
        finally:
            for hook in hooks:
                hook.remove()
        expanded_baselines = baselines.repeat((n,) + (1,) * (baselines.dim() - 1))
        attributions = (expanded.detach() - expanded_baselines) * grads
        return attributions.view(n, m, *attributions.shape[1:]).mean(1)
