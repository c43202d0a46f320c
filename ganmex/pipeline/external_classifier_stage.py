"""`classifier=external`: import a model trained elsewhere as an ordinary classifier artifact.

Nothing is trained. The model file is read (its format from its content), wrapped with its input
convention, checked on a batch of the dataset, scored on the validation and test splits exactly as a
trained classifier is, and committed with a copy of the file. Every later stage (GAN, oracle,
evaluation) and `ganmex.load_classifier` then use it as they use a trained one.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from ganmex.artifacts import Artifact
from ganmex.data.base import ImageDataModule
from ganmex.models.external import ModelImportError, imported_classifier, resolve_format
from ganmex.models.import_checks import check_imported_classifier
from ganmex.pipeline.build import build_trainer
from ganmex.pipeline.stage import TrainedStage, scalar_metrics
from ganmex.training.classifier import ClassifierModule
from ganmex.training.soundness import check_sound

log = logging.getLogger(__name__)

# the copy of the user's file inside the artifact (the artifact stays usable if the original moves)
MODEL_FILE = "model.bin"
HASH_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: the import's hash covers the model itself, not its path."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_external(section: DictConfig | dict | None) -> bool:
    """A classifier section that imports a model file instead of training a network."""
    return section is not None and section.get("name") == "external"


def model_path(section: DictConfig) -> Path:
    """`classifier.path`, which must name a file."""
    path = section.get("path")
    if not path:
        raise ModelImportError(
            "classifier=external needs classifier.path=<your model file> (docs/own_model.md)"
        )
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise ModelImportError(f"classifier.path={path} does not exist; pass the model file's path")
    return path


def imported_identity(section: DictConfig) -> dict:
    """What an import's artifact hash covers: the file's bytes, how it is read (format, net), the input
    convention and the feature layer; not the file's name or where it lies, nor the seed."""
    settings = OmegaConf.to_container(section, resolve=True)
    return {
        "model_sha256": file_digest(model_path(section)),
        **{key: settings.get(key) for key in ("format", "net", "input", "feature_layer")},
    }


class ExternalClassifierStage(TrainedStage):
    """Reads `cfg.classifier` of conf/classifier/external.yaml: path, format, net, input, feature_layer,
    trust_pickle, min_val_acc."""

    section = "classifier"
    headline = ("val/acc", "test/acc")

    @property
    def model_path(self) -> Path:
        return model_path(self.settings)

    def build_module(self, datamodule: ImageDataModule) -> ClassifierModule:
        """The imported model, checked on one batch, inside the module that scores every classifier."""
        self.classifier = imported_classifier(self.settings, self.model_path, self.format)
        datamodule.setup("fit")
        images, _ = next(iter(datamodule.val_dataloader()))
        check_imported_classifier(self.classifier, images, datamodule.num_classes)
        return ClassifierModule(self.classifier, datamodule.num_classes)

    def state(self, module: ClassifierModule) -> dict:
        return {"external_format": self.format, "model_file": MODEL_FILE}

    def _train(self, artifact: Artifact, started: float) -> dict:
        L.seed_everything(self.seed, workers=True)
        requested = self.settings.get("format", "auto")
        self.format = resolve_format(self.model_path, requested, bool(self.settings.get("trust_pickle")))
        if self.format != requested:
            log.info("classifier.path=%s is a %s file", self.model_path, self.format)
        datamodule = self.datamodule()
        module = self.build_module(datamodule)
        work_dir = artifact.begin()
        trainer = build_trainer(self.cfg, self.section, work_dir)
        trainer.validate(module, datamodule=datamodule, verbose=False)
        metrics = scalar_metrics(trainer.callback_metrics, ("val/",))
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update(scalar_metrics(trainer.callback_metrics, ("test/",)))
        metrics["chance_acc"] = 1.0 / datamodule.num_classes
        metrics["train_time_s"] = round(time.perf_counter() - started, 2)
        self._check_accuracy(metrics)
        if trainer.is_global_zero:
            shutil.copyfile(self.model_path, work_dir / MODEL_FILE)
            artifact.commit(self.state(module), self.record(datamodule), metrics)
        log.info(
            "imported %s (%s): val/acc = %.4f, test/acc = %.4f",
            self.model_path,
            self.format,
            metrics.get("val/acc", float("nan")),
            metrics.get("test/acc", float("nan")),
        )
        return metrics

    def _check_accuracy(self, metrics: dict) -> None:
        floor = self.settings.get("min_val_acc")
        accuracy = metrics.get("val/acc")
        if floor is not None and accuracy is not None and accuracy < floor:
            raise ModelImportError(
                f"the imported classifier reaches val/acc {accuracy:.3f} on {self.cfg.dataset.get('name')} "
                f"(chance {metrics['chance_acc']:.3f}), below classifier.min_val_acc={floor}: the input "
                f"convention is probably wrong; set classifier.input.mean/std to the normalisation it was "
                f"trained with (or null for [0, 1] pixels), or lower classifier.min_val_acc"
            )
        check_sound(self.section, metrics, {})

    def record(self, datamodule: ImageDataModule) -> dict:
        return {**super().record(datamodule), "external_format": self.format}
