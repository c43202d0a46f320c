"""Classifiers trained elsewhere, behind ganmex's classifier contract: [0, 1] pixels in, logits out.

`load_model_file` reads a user's model file whatever way it was saved (the format is read from the
file's content, not its name); `wrap_classifier` puts the model's own input normalisation in front of
it, so every other part of ganmex keeps working in pixel space. Failures are `ModelImportError`: one
line naming the file or key and the fix.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganmex.errors import ConfigError, check_choice
from ganmex.models.classifiers import Normalize
from ganmex.models.inputs import classifier_input

log = logging.getLogger(__name__)

MODEL_FORMATS = ("state_dict", "torchscript", "export", "lightning", "pickle")
FORMAT_SETTINGS = ("auto", *MODEL_FORMATS)
# the formats whose file holds weights only: `classifier.net` says which class they belong to
NEEDS_NET = ("state_dict", "lightning")
# checkpoint keys under which training scripts commonly nest a state_dict
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
LIGHTNING_MARKER = "pytorch-lightning_version"


class ModelImportError(ConfigError):
    """A model file that cannot be imported as it is configured; the message names the fix."""


def _zip_names(path: Path) -> list[str]:
    if not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def detect_format(path: str | Path) -> str:
    """The format of a model file, from what the file holds (its extension is not trusted)."""
    path = Path(path)
    names = _zip_names(path)
    tails = {name.split("/", 1)[-1] for name in names}
    if "archive_format" in tails or any(t.startswith("models/") and t.endswith(".json") for t in tails):
        return "export"
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return "torchscript"
    content = _torch_load_weights(path)
    if isinstance(content, Mapping) and LIGHTNING_MARKER in content and "state_dict" in content:
        return "lightning"
    if isinstance(content, Mapping):
        return "state_dict"
    raise ModelImportError(
        f"classifier.path={path} holds a {type(content).__name__}, not a state_dict, TorchScript, "
        f"torch.export or Lightning checkpoint; save the model with one of those (docs/own_model.md)"
    )


def _torch_load_weights(path: Path) -> Any:
    """torch.load without running pickled code; a file that needs it names `classifier.trust_pickle`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise _PickledObject(str(path)) from None
        raise _not_a_model(path, error) from None
    except Exception as error:  # torch.load raises many types for a file that is no checkpoint
        raise _not_a_model(path, error) from None


class _PickledObject(ModelImportError):
    """The file pickles Python objects (a whole nn.Module): loading it would run code from the file."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"classifier.path={path} is a pickled Python object (e.g. torch.save(model)), which runs code "
            f"when loaded; save model.state_dict() instead, or set classifier.trust_pickle=true if you "
            f"trust the file"
        )


def _not_a_model(path: Path, error: Exception) -> ModelImportError:
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    return ModelImportError(
        f"classifier.path={path} is not a PyTorch model file ({reason}); pass a state_dict, TorchScript "
        f"(torch.jit.save), torch.export (.pt2) or Lightning checkpoint"
    )


def resolve_format(path: Path, fmt: str = "auto", trust_pickle: bool = False) -> str:
    """The format to read `path` in: `fmt` itself, or for `auto` the one its content shows (a pickled
    whole module only with `trust_pickle`)."""
    check_choice("classifier.format", fmt, FORMAT_SETTINGS)
    if fmt != "auto":
        return fmt
    try:
        return detect_format(path)
    except _PickledObject:
        if not trust_pickle:
            raise
        return "pickle"


def load_model_file(
    path: str | Path,
    fmt: str = "auto",
    net: Mapping | None = None,
    trust_pickle: bool = False,
) -> tuple[nn.Module, str]:
    """(the model in eval mode on the CPU, its format) from a file saved by a user's own code.

    `net` is `{_target_: class or factory, **kwargs}` for the formats that hold weights only
    (state_dict, Lightning checkpoint); the other formats carry their code with them.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"classifier.path={path} does not exist; pass the model file's path")
    fmt = resolve_format(path, fmt, trust_pickle)
    if fmt in NEEDS_NET and not (net and net.get("_target_")):
        raise ModelImportError(
            f"classifier.path={path} holds {fmt} weights only; set classifier.net._target_ to the class "
            f"(or factory) that builds the network, with its keyword arguments"
        )
    loader = {
        "state_dict": _load_state_dict,
        "lightning": _load_lightning,
        "torchscript": _load_torchscript,
        "export": _load_export,
        "pickle": _load_pickle,
    }[fmt]
    model = loader(path, net=net, trust_pickle=trust_pickle)
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"classifier.path={path} ({fmt}) loaded a {type(model).__name__}, not a model")
    return model.eval(), fmt


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build_net(net: Mapping, **defaults: Any) -> nn.Module:
    """Instantiate `classifier.net` (importable from PYTHONPATH or the working directory); an
    unimportable `_target_` or bad arguments give one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    conf = OmegaConf.create(dict(net))
    extra = {k: v for k, v in defaults.items() if k not in conf}
    if os.getcwd() not in sys.path:  # a class defined beside where the run starts, as `python -m` finds it
        sys.path.append(os.getcwd())
    try:
        return instantiate(conf, **extra)
    except InstantiationException as error:
        reason = str(error).strip().splitlines()[0]
        raise ModelImportError(
            f"classifier.net._target_={net['_target_']} cannot be built ({reason}); give an importable "
            f"class or factory (module.path.Name, on PYTHONPATH) and its keyword arguments"
        ) from None


def _fit_weights(model: nn.Module, state: Mapping[str, Tensor], path: Path, target: str) -> nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        # Lightning-style "Error(s) in loading state_dict for X:\n\tMissing key(s) ...": keep the keys
        details = " ".join(str(error).split(":", 1)[-1].split())[:300]
        raise ModelImportError(
            f"the weights in classifier.path={path} do not fit classifier.net._target_={target} "
            f"({details}); set classifier.net to the class and arguments they were saved from"
        ) from None
    return model


def _load_state_dict(path: Path, net: Mapping, **_: Any) -> nn.Module:
    content = _torch_load_weights(path)
    for key in STATE_DICT_KEYS:  # a training checkpoint that nests the weights
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
            break
    if not isinstance(content, Mapping) or not all(isinstance(v, Tensor) for v in content.values()):
        raise ModelImportError(f"classifier.path={path} is not a state_dict (name -> tensor)")
    return _fit_weights(build_net(net), content, path, net["_target_"])


def _load_lightning(path: Path, net: Mapping, **_: Any) -> nn.Module:
    """The user's LightningModule from its checkpoint: the class from `classifier.net`, its
    constructor arguments from the config over those the checkpoint saved (`save_hyperparameters`)."""
    content = _torch_load_weights(path)
    if not isinstance(content, Mapping) or "state_dict" not in content:
        raise ModelImportError(f"classifier.path={path} is not a Lightning checkpoint (no state_dict)")
    hparams = dict(content.get("hyper_parameters") or {})
    return _fit_weights(build_net(net, **hparams), content["state_dict"], path, net["_target_"])


def _load_torchscript(path: Path, **_: Any) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as error:
        raise _not_a_model(path, error) from None


def _load_export(path: Path, **_: Any) -> nn.Module:
    try:
        program = torch.export.load(str(path))
    except Exception as error:  # torch.export raises many types for a damaged archive
        raise _not_a_model(path, error) from None
    return _allow_mode_switch(program.module())


def _allow_mode_switch(model: nn.Module) -> nn.Module:
    """An exported program's module refuses train()/eval(): its train/eval behaviour was fixed when it
    was exported. Drop that refusal so that wrappers can call eval(); the import checks that the graph
    behaves as in eval mode (repeatable, batch-independent)."""
    for name in ("train", "eval"):
        model.__dict__.pop(name, None)
    return model


def _load_pickle(path: Path, trust_pickle: bool = False, **_: Any) -> nn.Module:
    if not trust_pickle:
        raise _PickledObject(str(path))
    return torch.load(path, map_location="cpu", weights_only=False)


class ImportedClassifier(nn.Module):
    """A user's model as a ganmex classifier: [0, 1] pixels -> its normalisation -> its logits.

    The wrapped model is `net`; `normalize` is its input convention (identity when it takes pixels).
    """

    def __init__(self, net: nn.Module, normalize: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        """Logits for pixels x (N, C, H, W) in [0, 1] (uint8 is divided by 255); see `models.inputs`."""
        out = self.net(self.normalize(classifier_input(x, self.training)))
        if not isinstance(out, Tensor):
            raise ModelImportError(
                f"the classifier returns a {type(out).__name__}, not a logits tensor (N, classes); wrap it "
                f"so that forward returns the logits alone"
            )
        return out


class ImportedClassifierWithFeatures(ImportedClassifier):
    """An imported classifier whose penultimate features are a named module's output (FID/KID in f's
    space)."""

    def __init__(self, net: nn.Module, normalize: nn.Module, feature_layer: str) -> None:
        super().__init__(net, normalize)
        modules = dict(net.named_modules())
        if feature_layer not in modules or isinstance(net, torch.jit.ScriptModule):
            named = ", ".join(name for name in modules if name) or "none"
            raise ModelImportError(
                f"classifier.feature_layer={feature_layer} is not a hookable module of the model "
                f"(modules: {named[:300]}); name one of them, or unset it (FID/KID in f's space is then "
                f"skipped)"
            )
        self.feature_layer = feature_layer

    def features(self, x: Tensor) -> Tensor:
        """The output of `feature_layer` for pixels x, flattened per image."""
        captured: list[Tensor] = []
        layer = dict(self.net.named_modules())[self.feature_layer]
        handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            self(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def wrap_classifier(
    model: nn.Module,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    feature_layer: str | None = None,
) -> ImportedClassifier:
    """Any classifier as ganmex explains it: give the normalisation it expects on [0, 1] pixels
    (`mean`/`std`; none when it takes pixels) and optionally the module whose output is its
    penultimate features. The model is put in eval mode and frozen."""
    if (mean is None) != (std is None):
        raise ModelImportError("give classifier.input.mean and classifier.input.std together, or neither")
    normalize: nn.Module = nn.Identity() if mean is None else Normalize(list(mean), list(std))
    model = _allow_mode_switch(model)
    if feature_layer:
        wrapped: ImportedClassifier = ImportedClassifierWithFeatures(model, normalize, feature_layer)
    else:
        wrapped = ImportedClassifier(model, normalize)
    return wrapped.eval().requires_grad_(False)  # on the wrapper: a ScriptModule refuses requires_grad_


def imported_classifier(section: Mapping, model_file: Path, fmt: str) -> ImportedClassifier:
    """The wrapped model of an import: the file in `fmt`, with the section's input convention."""
    model, _ = load_model_file(
        model_file, fmt, _plain(section.get("net")), bool(section.get("trust_pickle", False))
    )
    convention = section.get("input") or {}
    return wrap_classifier(model, convention.get("mean"), convention.get("std"), section.get("feature_layer"))
