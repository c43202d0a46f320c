"""The life of a trained stage, written once: reuse -> seed -> data -> resume -> train -> commit.

A concrete stage (classifier, oracle, GAN, autoencoder) says only what differs: which config section
it reads, what goes into its hash, how to build its LightningModule and what state it saves.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import Artifact
from ganmex.data.base import ImageDataModule
from ganmex.data.identity import dataset_identity
from ganmex.data.info import DatasetInfo, check_compatible
from ganmex.errors import ConfigError, UnsoundTrainingError
from ganmex.pipeline.build import build_datamodule, build_trainer
from ganmex.pipeline.stage_graph import NEEDS
from ganmex.termination import Terminated
from ganmex.training.checkpointing import AtomicCheckpointIO, usable_resume_checkpoint
from ganmex.training.soundness import NonFiniteLossCallback, check_sound

log = logging.getLogger(__name__)

# stage keys that change how a run is checkpointed or laid out in memory, not what it produces: left out
# of the hash
OPERATIONAL_KEYS = ("checkpoint_every_n_steps", "channels_last")


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


# bumped whenever what is hashed changes; version 2 hashes values (35 and 35.0 alike), version 1 hashed the
# YAML's text
HASH_VERSION = 2


def hashed_section(section: DictConfig | None) -> Any:
    """A stage's config without its operational keys, as plain values (interpolations unresolved, so
    that a reference hashes as the reference)."""
    if section is None:
        return None
    kept = [k for k in section if k not in OPERATIONAL_KEYS]
    return by_value(OmegaConf.to_container(OmegaConf.masked_copy(section, kept), resolve=False))


def by_value(value: Any) -> Any:
    """Numbers by their value: an integral float becomes the int (35.0 -> 35), so how the YAML was typed
    does not change an artifact's hash; booleans stay booleans."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(key): by_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [by_value(item) for item in value]
    return value


def stage_artifact(cfg: DictConfig, section: str) -> Artifact:
    """`<section>.artifact=<dir>` when given, else `artifacts/<section>-<hash>` of the training data,
    the section's config, the seed and the artifacts of the stages it needs (`stage_graph.NEEDS`, e.g.
    the classifier a GAN was trained against)."""
    from ganmex.artifacts import config_hash

    node = cfg.get(section)
    explicit = node.get("artifact") if node is not None else None
    if explicit:
        return explicit_artifact(section, explicit)
    payload = {
        "hash_version": HASH_VERSION,
        "dataset": by_value(dataset_identity(cfg.dataset)),
        **made_from(cfg, section),
        **{need: stage_artifact(cfg, need).dir_name for need in NEEDS[section]},
    }
    return Artifact(section, config_hash(payload), Path(cfg.paths.artifact_dir))


def made_from(cfg: DictConfig, section: str) -> dict[str, Any]:
    """What a stage's artifact depends on besides the data and its upstream artifacts: its config and the
    seed, or for an imported classifier (`classifier=external`) the model file's bytes and how it is read."""
    from ganmex.pipeline.external_classifier_stage import imported_identity, is_external

    node = cfg.get(section)
    if is_external(node):
        return by_value(imported_identity(node))
    return {section: hashed_section(node), "seed": by_value(cfg.seed)}


# which artifact kinds an explicit `<section>.artifact=` may name
# an oracle is a classifier too: either can be explained, tested, or judge the other's counterfactuals
ACCEPTED_KINDS = {"oracle": ("oracle", "classifier"), "classifier": ("classifier", "oracle")}


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def explicit_artifact(section: str, path: str | Path) -> Artifact:
    """The artifact at `<section>.artifact=<path>`, refused when another stage wrote it."""
    artifact = Artifact.from_dir(path)
    accepted = ACCEPTED_KINDS.get(section, (section,))
    if artifact.stage not in accepted:
        raise ConfigError(
            f"{section}.artifact={path} is {article(artifact.stage)} {artifact.stage} artifact, not "
            f"{article(section)} {section} artifact; "
            f"pass a {section}-<hash> directory or unset {section}.artifact to train one"
        )
    return artifact


def check_fits_data(artifact: Artifact, data: DatasetInfo, section: str) -> None:
    """A model made elsewhere (`<section>.artifact=<dir>`) must have this data's channels, image size and
    classes: otherwise a GAN or oracle trains against it and fails deep in a loss, or trains silently."""
    recorded = artifact.config().get("dataset_info")
    if recorded is not None:
        check_compatible(
            DatasetInfo.from_dict(recorded),
            data,
            model=f"{section}.artifact={artifact.path}",
            use="used with dataset",
            fix=f"pass a {section} trained on this data, or unset {section}.artifact to train one",
        )


def scalar_metrics(metrics: dict, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Trainer callback metrics with the given prefixes, as plain floats."""
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefixes)}


@rank_zero_only
def announce_reuse(artifact: Artifact) -> None:
    log.info("reusing finished %s artifact %s (delete it to retrain)", artifact.stage, artifact.path)


class TrainedStage(ABC):
    """One trained stage. Subclasses set `section` and implement `build_module` and `state`."""

    section: str = ""
    headline: tuple[str, ...] = ()  # metrics logged when the stage finishes

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.settings: DictConfig = cfg[self.section]

    # --- what differs between stages ------------------------------------------------------------
    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    def datamodule(self) -> ImageDataModule:
        return build_datamodule(self.cfg.dataset)

    @abstractmethod
    def build_module(self, datamodule: ImageDataModule) -> L.LightningModule:
        """The LightningModule this stage trains."""

    @abstractmethod
    def state(self, module: L.LightningModule) -> dict:
        """The weights that make up the artifact's checkpoint.ckpt."""

    def trainer_options(self, datamodule: ImageDataModule) -> dict[str, Any]:
        """Extra Trainer keyword arguments on top of the trainer group and the stage budget."""
        return {}

    def extra_callbacks(self, work_dir: Path) -> list[L.Callback]:
        return []

    def expectations(self) -> dict[str, tuple[float | None, str]]:
        """Quality floors checked before commit: metric -> (floor, the config key that sets it)."""
        return {}

    def record(self, datamodule: ImageDataModule) -> dict:
        """What the artifact was made from (config.yaml)."""
        return {
            "stage": self.section,
            "dataset_info": datamodule.info.to_dict(),
            self.section: self.settings,
            "dataset": self.cfg.dataset,
            "seed": self.seed,
        }

    def test(self, trainer: L.Trainer, module: L.LightningModule, datamodule: ImageDataModule) -> dict:
        """Score the trained module on the test split, when it has a test step."""
        if type(module).test_step is L.LightningModule.test_step:
            return {}
        trainer.test(module, datamodule=datamodule, verbose=False)
        return scalar_metrics(trainer.callback_metrics, ("test/",))

    # --- the common life ------------------------------------------------------------------------
    def artifact(self) -> Artifact:
        return stage_artifact(self.cfg, self.section)

    def run(self) -> StageResult:
        started = time.perf_counter()
        artifact = self.artifact()
        if artifact.exists:
            return self._reused(artifact, started)
        if self.settings.get("artifact"):
            raise FileNotFoundError(
                f"{self.section}.artifact={self.settings.artifact} is not a finished artifact "
                f"(no metrics.json); unset it to train one"
            )
        # two identical runs must not resume from each other's checkpoint or replace each other's artifact
        with artifact.lock(timeout_s=self.cfg.get("artifact_lock_timeout_s")):
            if artifact.exists:  # another run finished it while we waited
                return self._reused(artifact, started)
            try:
                metrics = self._train(artifact, started)
            except Terminated as stop:
                raise Terminated(
                    f"{stop} during {self.section} training: nothing was committed; rerun the same command "
                    f"to resume from {artifact.partial_path}"
                ) from None
        return StageResult(self.section, artifact, False, metrics, time.perf_counter() - started)

    def _reused(self, artifact: Artifact, started: float) -> StageResult:
        if self.settings.get("artifact"):  # made elsewhere, perhaps from other data: check before training
            check_fits_data(artifact, build_datamodule(self.cfg.dataset).info, self.section)
        announce_reuse(artifact)
        return StageResult(self.section, artifact, True, artifact.metrics(), time.perf_counter() - started)

    def _train(self, artifact: Artifact, started: float) -> dict:
        L.seed_everything(self.seed, workers=True)
        datamodule = self.datamodule()
        module = self.build_module(datamodule)
        work_dir = artifact.partial_path  # created just before fit: a failed start-up leaves no empty dir
        resume = usable_resume_checkpoint(artifact.resume_checkpoint(), module)
        if resume is not None:
            log.info("resuming %s training from %s", self.section, resume)
        options = {"plugins": [AtomicCheckpointIO()], **self.trainer_options(datamodule)}
        trainer = build_trainer(self.cfg, self.section, work_dir, self.settings.trainer, **options)
        extra = self.extra_callbacks(work_dir)
        if any(isinstance(callback, ModelCheckpoint) for callback in extra):
            # the stage's own resume checkpoint replaces the configured one: two writers of last.ckpt in
            # one directory make Lightning write a second, stray last-v1.ckpt
            trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint)]
        trainer.callbacks.extend([NonFiniteLossCallback(self.section), *extra])
        artifact.begin()
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
        if trainer.interrupted:  # Ctrl+C that Lightning handled without exiting: never commit half a stage
            raise UnsoundTrainingError(
                f"{self.section} training was interrupted; rerun the same command to resume from "
                f"{artifact.partial_path}"
            )
        metrics = scalar_metrics(trainer.callback_metrics, ("val/", "train/"))
        if resume is not None and not any(key.startswith("val/") for key in metrics):
            # the checkpoint had finished its budget (a rerun after a failed check or commit): fit did
            # nothing, so score the restored weights again rather than report that nothing was validated
            trainer.validate(module, datamodule=datamodule, verbose=False)
            metrics.update(scalar_metrics(trainer.callback_metrics, ("val/",)))
        metrics.update(self.test(trainer, module, datamodule))
        metrics["train_time_s"] = round(time.perf_counter() - started, 2)
        check_sound(self.section, metrics, self.expectations())  # an unsound stage stays in .partial
        if trainer.is_global_zero:
            artifact.commit(self.state(module), self.record(datamodule), metrics)
        log.info(
            "%s: %s",
            self.section,
            ", ".join(f"{k} = {metrics[k]:.4f}" for k in self.headline if k in metrics),
        )
        return metrics
