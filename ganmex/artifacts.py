"""Stage artifacts: `artifacts/<stage>-<config hash>/`, written atomically and reused when finished.

A stage trains inside `<stage>-<hash>.partial/` (where Lightning's `last.ckpt` lets an interrupted
run resume) and only a complete directory is renamed to its final name, so a directory without
the `.partial` suffix is always finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.ckpt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
PARTIAL_SUFFIX = ".partial"
RESUME_CHECKPOINT = "last.ckpt"


def to_plain(value: Any) -> Any:
    """Resolve OmegaConf containers into plain python for hashing and saving."""
    if isinstance(value, DictConfig) or OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def config_hash(payload: Any, length: int = 10) -> str:
    """Stable short hash of a (resolved) config slice; key order does not matter."""
    text = json.dumps(to_plain(payload), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=float))
    os.replace(tmp, path)


@dataclass(frozen=True)
class Artifact:
    """A finished stage output directory."""

    stage: str
    key: str
    root: Path

    @property
    def path(self) -> Path:
        return self.root / f"{self.stage}-{self.key}"

    @property
    def partial_path(self) -> Path:
        return self.root / f"{self.stage}-{self.key}{PARTIAL_SUFFIX}"

    @property
    def exists(self) -> bool:
        return (self.path / METRICS).is_file()

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def metrics(self) -> dict:
        return json.loads((self.path / METRICS).read_text())

    def config(self) -> dict:
        return OmegaConf.to_container(OmegaConf.load(self.path / CONFIG), resolve=True)

    def begin(self) -> Path:
        """Create (or reopen, to resume) the partial directory and return it."""
        self.partial_path.mkdir(parents=True, exist_ok=True)
        return self.partial_path

    def resume_checkpoint(self) -> Path | None:
        ckpt = self.partial_path / RESUME_CHECKPOINT
        return ckpt if ckpt.is_file() else None

    def commit(self, state: dict, config: Any, metrics: dict) -> Path:
        """Write checkpoint, config and metrics into the partial dir, then rename it into place."""
        work = self.begin()
        tmp_ckpt = work / f".{CHECKPOINT}.tmp"
        torch.save(state, tmp_ckpt)
        os.replace(tmp_ckpt, work / CHECKPOINT)
        OmegaConf.save(OmegaConf.create(to_plain(config)), work / CONFIG)
        write_json_atomic(work / METRICS, metrics)
        resume = work / RESUME_CHECKPOINT
        if resume.exists():
            resume.unlink()
        if self.path.exists():  # a stale unfinished directory from an older layout
            shutil.rmtree(self.path)
        os.replace(work, self.path)
        log.info("wrote %s artifact %s", self.stage, self.path)
        return self.path


def newest_artifact(root: str | Path, stage: str) -> Path:
    """The most recently finished `<stage>-<hash>` directory under root (for scripts and notebooks)."""
    finished = [p for p in Path(root).glob(f"{stage}-*") if (p / METRICS).is_file()]
    if not finished:
        raise FileNotFoundError(
            f"no finished {stage}-<hash> artifact under {root}; run `python train.py` to create one"
        )
    return max(finished, key=lambda p: (p / METRICS).stat().st_mtime)


def artifact_kind(config: dict) -> str | None:
    """Which stage wrote an artifact: recorded as `stage`, else inferred from its config sections."""
    if config.get("stage"):
        return str(config["stage"])
    return next((k for k in ("gan", "autoencoder", "oracle", "classifier") if k in config), None)


# how to create each kind of artifact, for error messages
CREATE_COMMAND = {
    "classifier": "python train.py stage=classifier",
    "oracle": "python train.py stage=oracle",
    "gan": "python train.py stage=gan",
    "autoencoder": "python train.py stage=autoencoder autoencoder=conv_ae",
}


def load_artifact_dir(path: str | Path, kinds: tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """(config, checkpoint state) of a finished artifact directory of one of `kinds`, with a clear
    error for an unfinished directory, a missing file or an artifact of another kind."""
    path = Path(path)
    wanted = " or ".join(kinds) if kinds else "stage"
    create = CREATE_COMMAND.get(kinds[0], "python train.py") if kinds else "python train.py"
    if path.name.endswith(PARTIAL_SUFFIX):
        raise FileNotFoundError(
            f"{path} is an unfinished {wanted} artifact (a run was interrupted); rerun `{create}`"
        )
    if not (path / METRICS).is_file() or not (path / CHECKPOINT).is_file():
        raise FileNotFoundError(
            f"no finished {wanted} artifact at {path} (expected {CHECKPOINT}, {CONFIG} and {METRICS}); "
            f"create one with `{create}`"
        )
    config = OmegaConf.to_container(OmegaConf.load(path / CONFIG), resolve=True)
    kind = artifact_kind(config)
    if kinds is not None and kind not in kinds:
        raise FileNotFoundError(
            f"{path} is a {kind} artifact, not a {wanted} artifact; "
            f"pass a {kinds[0]}-<hash> directory"
        )
    state = torch.load(path / CHECKPOINT, map_location="cpu", weights_only=False)
    return config, state
