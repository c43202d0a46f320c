"""Shipped YAML nodes outside a Hydra run: a benchmark measures the settings a run would use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# the run-wide keys the shipped nodes interpolate, with conf/train.yaml's values unless given
RUN_KEYS = ("seed", "contrast")


def run_defaults() -> dict[str, Any]:
    """conf/train.yaml's values of RUN_KEYS."""
    train = OmegaConf.load(CONFIG_DIR / "train.yaml")
    return {key: train[key] for key in RUN_KEYS}


def shipped_node(file: str, *keys: str, **run: Any) -> DictConfig:
    """conf/<file>'s node at `keys`, its `${seed}`/`${contrast}` resolved from `run` (else the defaults)."""
    path = CONFIG_DIR / file
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.yaml") if not p.stem.startswith("_"))
        raise FileNotFoundError(
            f"no shipped config {file}: choose one of {', '.join(names) or '(none)'} in {path.parent}"
        )
    node = OmegaConf.load(path)
    for key in keys:
        node = node[key]
    return OmegaConf.merge({**run_defaults(), **run}, {"node": node}).node


def build_shipped(file: str, *keys: str, overrides: Mapping[str, Any] | None = None, **run: Any) -> Any:
    """The object a shipped node's `_target_` builds (an in-filler, an attribution method, a metric),
    with `overrides` merged into the node (e.g. the artifact an in-filler loads)."""
    return instantiate(OmegaConf.merge(shipped_node(file, *keys, **run), dict(overrides or {})))


def composed(overrides: Sequence[str] = (), config: str = "train") -> DictConfig:
    """The run config `python train.py <overrides>` would use (Hydra's defaults lists applied)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config, overrides=list(overrides))
