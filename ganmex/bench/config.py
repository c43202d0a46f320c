"""Shipped YAML nodes outside a Hydra run: a benchmark measures the settings a run would use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# the run-wide keys the shipped nodes interpolate (conf/train.yaml)
RUN_DEFAULTS: dict[str, Any] = {"seed": 0, "contrast": "one_vs_one"}


def shipped_node(file: str, *keys: str, **run: Any) -> DictConfig:
    """conf/<file>'s node at `keys`, its `${seed}`/`${contrast}` resolved from `run` (else the defaults)."""
    path = CONFIG_DIR / file
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; name a file under {CONFIG_DIR}, e.g. infill/mean.yaml"
        )
    node = OmegaConf.load(path)
    for key in keys:
        node = node[key]
    return OmegaConf.merge({**RUN_DEFAULTS, **run}, {"node": node}).node


def build_shipped(file: str, *keys: str, overrides: Mapping[str, Any] | None = None, **run: Any) -> Any:
    """The object a shipped node's `_target_` builds (an in-filler, an attribution method, a metric),
    with `overrides` merged into the node (e.g. the artifact an in-filler loads)."""
    return instantiate(OmegaConf.merge(shipped_node(file, *keys, **run), dict(overrides or {})))


def composed(overrides: Sequence[str] = (), config: str = "train") -> DictConfig:
    """The run config `python train.py <overrides>` would use (Hydra's defaults lists applied)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config, overrides=list(overrides))
