"""Turn config slices into objects: datamodules, classifiers, trainers, loggers, callbacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from ganmex.data.base import ImageDataModule
from ganmex.errors import ConfigError

log = logging.getLogger(__name__)


def build_datamodule(dataset_cfg: DictConfig, **overrides: Any) -> ImageDataModule:
    """The dataset's DataModule. Its own refusals (a ConfigError, a missing file) are raised as they are,
    not wrapped in Hydra's InstantiationException, so that the CLI shows them as one line."""
    try:
        return instantiate(dataset_cfg, **overrides, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError | FileNotFoundError):
            raise error.__cause__ from None
        raise


def _instantiate_named(group: DictConfig | None, fill: Mapping[str, Any]) -> list:
    """Instantiate each entry of a name -> config mapping; keys set to null in YAML that appear in
    `fill` are supplied by the stage (a logger's version, a checkpoint's dirpath)."""
    objects = []
    for name, conf in (group or {}).items():
        if conf is None or "_target_" not in conf:
            continue
        extra = {k: v for k, v in fill.items() if k in conf and conf[k] is None}
        log.debug("instantiating %s with %s", name, extra)
        objects.append(instantiate(conf, **extra))
    return objects


def build_trainer(
    cfg: DictConfig, stage: str, work_dir: Path, budget: DictConfig | Mapping | None = None, **kwargs: Any
) -> L.Trainer:
    """A Trainer from the `trainer` group (hardware, strategy) plus the stage's own budget."""
    fill = {"version": stage, "dirpath": str(work_dir), "name": stage}
    loggers = _instantiate_named(cfg.get("logger"), fill)
    callbacks = _instantiate_named(cfg.get("callbacks"), fill)
    if not loggers:  # a learning-rate monitor has nowhere to write without a logger (Lightning refuses it)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    options = dict(OmegaConf.to_container(budget, resolve=True) if budget is not None else {})
    options.update(kwargs)
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **options)
