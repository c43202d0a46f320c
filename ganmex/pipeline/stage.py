"""What every stage returns, and the helpers stages share."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import Artifact

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    """A stage's artifact, whether it was reused, and its metrics (for the run summary)."""

    name: str
    artifact: Artifact | None
    reused: bool
    metrics: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    def summary(self) -> dict:
        return {
            "artifact": str(self.artifact.path) if self.artifact else None,
            "reused": self.reused,
            "wall_time_s": round(self.wall_time_s, 2),
            "metrics": self.metrics,
        }


def artifact_root(cfg: DictConfig) -> Path:
    return Path(cfg.paths.artifact_dir)


# stage keys that change how a run is checkpointed, not what it produces: left out of the hash
OPERATIONAL_KEYS = ("checkpoint_every_n_steps",)


def hashed_section(section: DictConfig | None) -> DictConfig | None:
    """A stage's config without its operational keys, for the artifact hash (hashed as its YAML text,
    interpolations unresolved, so that hashes stay stable across releases)."""
    if section is None or not any(key in section for key in OPERATIONAL_KEYS):
        return section
    return OmegaConf.masked_copy(section, [k for k in section if k not in OPERATIONAL_KEYS])


def stage_artifact(cfg: DictConfig, stage: str, extra: dict | None = None) -> Artifact:
    """`<stage>.artifact=<dir>` when given, else `artifacts/<stage>-<hash>` of the training data, the
    stage's config, the seed and `extra` (e.g. the classifier a GAN was trained against)."""
    from ganmex.artifacts import config_hash
    from ganmex.pipeline.build import dataset_identity

    section = cfg.get(stage)
    explicit = section.get("artifact") if section is not None else None
    if explicit:
        path = Path(explicit)
        name, _, key = path.name.partition("-")
        return Artifact(name, key, path.parent)
    payload = {
        "dataset": dataset_identity(cfg.dataset),
        stage: hashed_section(section),
        "seed": cfg.seed,
        **(extra or {}),
    }
    return Artifact(stage, config_hash(payload), artifact_root(cfg))


def require_trainable(cfg: DictConfig, stage: str) -> None:
    """An explicit `<stage>.artifact` must already be finished: we never train into someone's path."""
    explicit = cfg[stage].get("artifact")
    if explicit:
        raise FileNotFoundError(
            f"{stage}.artifact={explicit} is not a finished artifact (no metrics.json); unset it to train one"
        )


@rank_zero_only
def announce_reuse(artifact: Artifact) -> None:
    log.info("reusing finished %s artifact %s (delete it to retrain)", artifact.stage, artifact.path)


def reused(artifact: Artifact, started: float) -> StageResult:
    announce_reuse(artifact)
    return StageResult(artifact.stage, artifact, True, artifact.metrics(), time.perf_counter() - started)


def scalar_metrics(metrics: dict, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Trainer callback metrics with the given prefixes, as plain floats."""
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefixes)}
