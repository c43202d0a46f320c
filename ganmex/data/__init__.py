"""Datasets as LightningDataModules producing float NCHW pixels in [0, 1].

Attributes resolve lazily (PEP 562): `ganmex.data.errors` is imported by the CLI before the config is
validated, and importing `ganmex.data.base` pulls in Lightning (seconds), which `--help` and a config error
must not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganmex.data.base import ImageDataModule
    from ganmex.data.errors import DatasetNotFoundError
    from ganmex.data.info import DatasetInfo

_LAZY = {
    "DatasetInfo": "ganmex.data.info",
    "ImageDataModule": "ganmex.data.base",
    "DatasetNotFoundError": "ganmex.data.errors",
}
__all__ = ["DatasetInfo", "DatasetNotFoundError", "ImageDataModule"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'ganmex.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
