"""Errors the CLI reports as one clear message instead of a traceback, and the one choice check.

Every class here subclasses ConfigError, so `except ConfigError` in the CLI reports them all as one
line with exit code 1; the subclasses only let callers and tests tell the causes apart.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


class UnsoundTrainingError(ConfigError):
    """A stage trained something unusable (non-finite loss or weights, a metric under its floor);
    its artifact is left unfinished (`.partial`) and the message names the metric and the key to change."""


class DiskFullError(ConfigError):
    """A write failed for lack of space; the message names the file, the disk and how to recover."""


class DamagedArtifactError(ConfigError):
    """A finished artifact's file is empty, cut short or unparsable; the message names it and the fix."""


class WorkerError(ConfigError):
    """An evaluation worker process failed or died; the message names its unit and how to rerun it."""


class ArtifactLockedError(ConfigError):
    """Another run holds an artifact's lock longer than the configured wait."""


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices`; otherwise a ConfigError naming the key and the valid options."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value  # type: ignore[return-value]
