"""Cascading model-parameter randomisation (Adebayo et al. 2018): re-initialise the classifier's layers one
by one from the logits down and measure, per layer, the Spearman rank correlation between the attributions of
the trained model and of the progressively randomised one. A method that passes the check loses correlation
quickly; one that keeps it explains the input, not the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.metrics.scoring import check_images, spearman_rows
from ganmex.tensors import as_labels

# explain_fn(model, x, source, target) -> attributions shaped like x
ModelExplainFn = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]


def _randomisable(module: nn.Module) -> bool:
    return hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False))


def has_randomisable_layers(model: nn.Module) -> bool:
    """False for models whose layers cannot be re-initialised (TorchScript, exported graphs)."""
    return any(_randomisable(m) for m in model.modules())


def randomisable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with their own parameters and a `reset_parameters`, from the output back to the input."""
    layers = [(name, m) for name, m in model.named_modules() if _randomisable(m)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer with parameters to randomise")
    return layers[::-1]


class CascadingRandomization(Metric):
    """Per-layer Spearman correlation, original vs cascading-randomised attributions (lower = passes).

    update(model, explain_fn, inputs, source, target): explain_fn(model, x, source, target) -> attributions.
    The model is deep-copied; the caller's model is never modified. `abs=True` compares |attributions|
    (Adebayo et al. report both). compute() -> {"spearman": (N, L), "spearman/<layer>": (N,) per layer};
    `layer_names` lists the layers in randomisation order (output first).
    """

    is_differentiable = False
    higher_is_better = False
    output_directions = {"spearman": False}  # low correlation with a randomised model: weights matter
    full_state_update = False

    def __init__(self, abs: bool = False, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.abs = bool(abs)
        self.seed = int(seed)
        self.layer_names: list[str] = []
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _flat(self, a: Tensor) -> Tensor:
        a = a.detach().flatten(1)
        return a.abs() if self.abs else a

    @staticmethod
    def _explain(
        explain_fn: ModelExplainFn, model: nn.Module, x: Tensor, source: Tensor, target: Tensor
    ) -> Tensor:
        with torch.enable_grad():  # torchmetrics runs update() without autograd; gradient methods need it
            return explain_fn(model, x, source, target).detach()

    def update(
        self,
        model: nn.Module,
        explain_fn: ModelExplainFn,
        inputs: Tensor,
        source: Tensor | int,
        target: Tensor | int,
        attributions: Tensor | None = None,
    ) -> None:
        """`attributions`: explain_fn(model, inputs, ...) when the caller already has it (the evaluation
        does); otherwise it is computed here."""
        x = check_images(inputs)
        n = x.shape[0]
        source = as_labels(source, n, x.device, "source")
        target = as_labels(target, n, x.device, "target")
        if attributions is None:
            attributions = self._explain(explain_fn, model, x, source, target)
        original = self._flat(attributions)
        randomised = copy.deepcopy(model)
        layers = randomisable_layers(randomised)
        names = [name for name, _ in layers]
        if self.layer_names and self.layer_names != names:
            raise ValueError(f"model layers {names} differ from earlier updates' {self.layer_names}")
        self.layer_names = names
        cols = []
        for i, (_, layer) in enumerate(layers):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + i)
                layer.reset_parameters()
            cols.append(
                spearman_rows(original, self._flat(self._explain(explain_fn, randomised, x, source, target)))
            )
        self.values.append(torch.stack(cols, 1))

    def get_extra_state(self) -> dict[str, list[str]]:
        """The layer names beside the states: a process that merges another's states reports them too."""
        return {"layer_names": list(self.layer_names)}

    def set_extra_state(self, state: dict[str, list[str]]) -> None:
        names = list(state["layer_names"])
        if self.layer_names and names and self.layer_names != names:
            raise ValueError(f"model layers {names} differ from earlier updates' {self.layer_names}")
        self.layer_names = self.layer_names or names

    def compute(self) -> dict[str, Tensor]:
        values = dim_zero_cat(self.values)
        out = {"spearman": values}
        for j, name in enumerate(self.layer_names):
            out[f"spearman/{name}"] = values[:, j]
        return out
