"""Resume checkpoints that are whole or absent: atomic writes, and a readability probe before resuming.

`AtomicCheckpointIO` goes into `Trainer(plugins=[...])`: every checkpoint is written to a temp file
in the same directory and renamed into place, so a kill mid-write leaves the previous checkpoint (or
none), never half a file. `readable_checkpoint` lets a stage discard a checkpoint that is damaged
anyway (disk full, copied half-way) instead of crashing in `trainer.fit(ckpt_path=...)`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ganmex.artifacts import save_atomic

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose saves are atomic on the local file system (temp file + os.replace)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        save_atomic(checkpoint, path)


def checkpoint_problem(path: str | Path, module: torch.nn.Module | None = None) -> str | None:
    """Why the checkpoint at `path` cannot be resumed from (None when it loads and, given `module`,
    holds weights of the same names and shapes: a `.partial` left by an older network must not block)."""
    path = Path(path)
    if not path.is_file():
        return "the file is missing"
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damage
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    if not isinstance(checkpoint, dict):
        return f"it holds a {type(checkpoint).__name__}, not a checkpoint dict"
    if module is not None:
        return weights_mismatch(checkpoint.get("state_dict", {}), module.state_dict())
    return None


def weights_mismatch(saved: dict, expected: dict) -> str | None:
    """How a saved state dict differs from a network's (None when names and shapes agree)."""
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        return f"its weights do not fit this network (missing {missing[:3]}, unexpected {unexpected[:3]})"
    for name, value in expected.items():
        if tuple(saved[name].shape) != tuple(value.shape):
            return f"its {name} has shape {tuple(saved[name].shape)}, this network's {tuple(value.shape)}"
    return None


def readable_checkpoint(path: str | Path) -> bool:
    """True when `path` holds a checkpoint that torch can load."""
    return checkpoint_problem(path) is None


def usable_resume_checkpoint(path: str | Path | None, module: torch.nn.Module | None = None) -> Path | None:
    """`path` when it can be resumed from (into `module`, when given); a damaged or stale one is logged,
    deleted and None returned, so the stage starts afresh instead of crashing."""
    if path is None:
        return None
    problem = checkpoint_problem(path, module)
    if problem is None:
        return Path(path)
    log.warning("checkpoint %s is unreadable (%s); starting the stage afresh", path, problem)
    Path(path).unlink(missing_ok=True)
    return None
