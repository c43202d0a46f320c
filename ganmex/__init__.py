"""ganmex: explain image classifiers with counterfactual baselines.

The loaders are imported lazily so that light tools (scripts/report.py) do not pay for lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
_LAZY = {
    "load_classifier": "ganmex.models.loading",
    "load_counterfactual_generator": "ganmex.models.loading",
    "load_autoencoder": "ganmex.models.loading",
    "wrap_classifier": "ganmex.models.external",
    "load_model_file": "ganmex.models.external",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganmex' has no attribute {name!r}")
