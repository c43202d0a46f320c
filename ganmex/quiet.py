"""Silence library messages we know to be harmless, each by its exact text AND the module that emits it.

Every Trainer of a run repeats Lightning's advertising tips and a torch deprecation that Lightning itself
triggers; they bury the lines a user needs. Nothing here is a global filter: an unrelated warning or log
line, or the same text from another module, still shows. Only the standard library is imported, so the CLI
can install the filters before anything heavy loads (and before Lightning exists).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    """A `warnings.warn` call: `message` and `module` are regexes matched at the start (module: in full)."""

    message: str
    module: str
    category: type[Warning]
    reason: str


@dataclass(frozen=True)
class KnownLogRecord:
    """A log record of one logger whose formatted message matches the regex `message` (at its start)."""

    logger: str
    message: str
    reason: str


KNOWN_WARNINGS: tuple[KnownWarning, ...] = (
    KnownWarning(
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        module=r"lightning\.pytorch\.utilities\._pytree",
        category=FutureWarning,
        reason="Lightning's own _pytree helper builds torch's deprecated LeafSpec; nothing we can change",
    ),
    KnownWarning(
        message=r"Using ModelCheckpoint with manual optimization and every_n_train_steps, "
        r"but no pre-optimization state was saved",
        module=r"lightning\.pytorch\.callbacks\.model_checkpoint",
        category=UserWarning,
        reason="a resume checkpoint must hold the post-step state (weights, optimisers, step counter agree); "
        "ganmex.training.checkpoint_callbacks.StepCheckpoint avoids the warning altogether",
    ),
    KnownWarning(
        message=r"The '\w+' does not have many workers which may be a bottleneck",
        module=r"lightning\.pytorch\.trainer\.connectors\.data_connector",
        category=UserWarning,
        reason="dataset.num_workers is a deliberate config choice (0: in-memory tensors, shared CPUs)",
    ),
    KnownWarning(
        message=r"You're resuming from a checkpoint that ended before the epoch ended",
        module=r"lightning\.pytorch\.loops\.training_epoch_loop",
        category=UserWarning,
        reason="resuming a GAN from a mid-epoch step checkpoint: the balanced sampler draws random batches "
        "anyway, so continuing with fresh ones is what training without the interruption would do",
    ),
)

# lightning_utilities' rank_zero_info logs through whichever of these Lightning registered last
_RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)
_RANK_ZERO_RECORDS: tuple[tuple[str, str], ...] = (
    (
        r"💡 Tip: For seamless cloud logging and experiment tracking, try installing \[litlogger\]",
        "an advert",
    ),
    (r"💡 Tip: For seamless cloud uploads and versioning, try installing \[litmodels\]", "an advert"),
    (r"GPU available: False, used: False$", "no accelerator exists: nothing to report"),
    (r"TPU available: False, using: 0 TPU cores$", "no accelerator exists: nothing to report"),
    (r"HPU available: False, using: 0 HPUs$", "no accelerator exists: nothing to report"),
    (
        r"`Trainer\(limit_val_batches=1\)` was configured so 1 batch will be used\.$",
        "the GAN's deliberate single validation batch (conf/gan/stargan.yaml), echoed by each GAN Trainer",
    ),
)
KNOWN_LOG_RECORDS: tuple[KnownLogRecord, ...] = (
    *(KnownLogRecord(name, text, why) for name in _RANK_ZERO_LOGGERS for text, why in _RANK_ZERO_RECORDS),
    KnownLogRecord(
        "lightning.pytorch.accelerators.cuda",
        r"LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES: \[",
        "repeated by every Trainer; the device is in the config (trainer=gpu)",
    ),
)


# loggers to which Lightning attaches its own console handler at import time
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def route_lightning_logs() -> None:
    """Send Lightning's log lines through the application's handlers only (Hydra's console + `<task>.log`).

    `import lightning` always adds an `INFO: ...` console handler to the `lightning` logger, and
    `lightning.pytorch` / `lightning.fabric` add one (and stop propagating) when the root logger had no
    handler yet. Imported after Hydra configured logging, every Lightning line then prints twice; imported
    before, it never reaches the run's log file. Call once after Lightning is imported and logging is
    configured; it does nothing while the root logger has no handler (the lines would be lost).
    """
    import lightning  # noqa: F401  (its import adds the handlers removed here)

    if not logging.getLogger().handlers:
        return
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
        logger.propagate = True


class DropMessages(logging.Filter):
    """Drops the records whose formatted message matches one of `patterns` (regexes, matched at the start)."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.match(message) for p in self.patterns)


def install_quiet_filters() -> None:
    """Ignore the known-harmless warnings and log records. Idempotent; call it once at start-up."""
    for known in KNOWN_WARNINGS:
        # `module` is matched with re.match; \Z makes it the whole module name, not a prefix
        warnings.filterwarnings(
            "ignore", message=known.message, category=known.category, module=known.module + r"\Z"
        )
    by_logger: dict[str, list[str]] = {}
    for known in KNOWN_LOG_RECORDS:
        by_logger.setdefault(known.logger, []).append(known.message)
    for name, patterns in by_logger.items():
        logger = logging.getLogger(name)  # a filter on the logger that creates the record, not a handler
        for old in [f for f in logger.filters if isinstance(f, DropMessages)]:
            logger.removeFilter(old)
        logger.addFilter(DropMessages(patterns))
