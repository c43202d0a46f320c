"""Build and load the trained networks of finished artifacts: classifier (and oracle), generator, autoencoder.

Every loader reads the artifact format of `ganmex.artifacts` and refuses an artifact of another kind
with a message that names the directory, the kind it found and the kind it wanted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import CONFIG, artifact_kind, check_required, load_artifact_dir, to_plain
from ganmex.data.info import DatasetInfo
from ganmex.models.autoencoder import ConvAutoencoder
from ganmex.models.classifiers import Classifier
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.external import imported_classifier


def build_classifier(classifier_cfg: DictConfig | Mapping, info: DatasetInfo) -> Classifier:
    """Instantiate the architecture for this dataset's channels, classes, size and normalisation."""
    return instantiate(
        OmegaConf.create(to_plain(classifier_cfg))["net"],
        channels=info.channels,
        num_classes=info.num_classes,
        image_size=info.image_size,
        mean=list(info.mean),
        std=list(info.std),
    )


def _frozen(net: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    net.eval().requires_grad_(False)
    return net.to(device)


def load_classifier(artifact_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of a finished classifier (or oracle) artifact, trained or imported; frozen, eval mode."""
    config, state = load_artifact_dir(artifact_dir, kinds=("classifier", "oracle"))
    check_required(config, Path(artifact_dir) / CONFIG, artifact_kind(config))
    section = config.get("classifier") or config["oracle"]
    if "external_format" in state:  # imported (classifier=external): the model file travels in the artifact
        net = imported_classifier(section, Path(artifact_dir) / state["model_file"], state["external_format"])
        return _frozen(net, device)
    net = build_classifier(section, DatasetInfo.from_dict(config["dataset_info"]))
    net.load_state_dict(state["state_dict"])
    return _frozen(net, device)


def load_counterfactual_generator(
    artifact_dir: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> CounterfactualGenerator:
    """The generator of a finished gan artifact (its EMA weights when trained with EMA and `ema`)."""
    config, state = load_artifact_dir(artifact_dir, kinds=("gan",))
    check_required(config, Path(artifact_dir) / CONFIG, "gan")
    info = config["dataset_info"]
    generator = instantiate(
        config["gan"]["generator"],
        channels=info["channels"],
        num_classes=info["num_classes"],
        image_size=info["image_size"],
    )
    weights = state["generator_ema"] if ema and state.get("generator_ema") is not None else state["generator"]
    generator.load_state_dict(weights)
    return CounterfactualGenerator(generator).to(device)


def load_autoencoder(artifact_dir: str | Path, device: str | torch.device = "cpu") -> ConvAutoencoder:
    """The trained autoencoder of a finished `autoencoder-<hash>` artifact, frozen and in eval mode."""
    _, state = load_artifact_dir(artifact_dir, kinds=("autoencoder",))
    net = ConvAutoencoder(**state["hparams"])
    net.load_state_dict(state["state_dict"])
    return _frozen(net, device)
