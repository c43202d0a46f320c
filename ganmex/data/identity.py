"""What a dataset config decides about the training data, for artifact hashes.

The identity is the config minus runtime keys (how fast or from where data
loads), plus what the datamodule class says about the content (its `content_identity`): a file-tree
fingerprint for image folders, file checksums for IDX sets. `root` is dropped only where such a
content identity stands in for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class
from omegaconf import OmegaConf

# dataset keys that change how fast data loads or whether it may be fetched, never which data it is
RUNTIME_DATASET_KEYS = ("download", "num_workers", "eval_batch_size", "network_timeout_s")


def _plain(dataset_cfg: Any) -> dict:
    if OmegaConf.is_config(dataset_cfg):
        return OmegaConf.to_container(dataset_cfg, resolve=True)
    return dict(dataset_cfg)


def dataset_identity(dataset_cfg: Mapping | Any) -> dict:
    """The part of a dataset config that decides the training data, plus its content identity."""
    plain = _plain(dataset_cfg)
    identity = {k: v for k, v in plain.items() if k not in RUNTIME_DATASET_KEYS}
    target = plain.get("_target_")
    content_identity = getattr(get_class(target), "content_identity", None) if target else None
    if content_identity is None:
        return identity
    content = content_identity(plain)
    if content.pop("replaces_root", False):
        identity.pop("root", None)
    if content:
        identity["content"] = content
    return identity
