"""Autoencoder stage: the conv autoencoder used by CEM (γ term) and FIDO (in-painting).

Its artifact holds `checkpoint.ckpt` = {"state_dict", "hparams"}; load it with
`ganmex.models.loading.load_autoencoder(artifact_dir, device)`.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.artifacts import Artifact
from ganmex.data.base import ImageDataModule
from ganmex.pipeline.stage import TrainedStage
from ganmex.training.autoencoder import AutoencoderModule


class AutoencoderStage(TrainedStage):
    """Reads `cfg.autoencoder` (conf/autoencoder/conv_ae.yaml): net, optimizer, masks, trainer budget."""

    section = "autoencoder"
    headline = ("test/loss",)

    def build_module(self, datamodule: ImageDataModule) -> AutoencoderModule:
        info = datamodule.info
        self.net = instantiate(self.settings.net, channels=info.channels, image_size=info.image_size)
        masks = self.settings.masks
        return AutoencoderModule(
            self.net,
            optimizer=instantiate(self.settings.optimizer),
            mask_prob=masks.prob,
            min_box=masks.min_box,
            max_box=masks.max_box,
            num_boxes=masks.num_boxes,
            eval_seed=self.cfg.seed,
        )

    def state(self, module: AutoencoderModule) -> dict:
        return {"state_dict": self.net.state_dict(), "hparams": dict(self.net.hparams)}


def autoencoder_artifact(cfg: DictConfig) -> Artifact:
    """Where this config's autoencoder lives: the hash covers data, architecture, masks, budget and seed."""
    return AutoencoderStage(cfg).artifact()
