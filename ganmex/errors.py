"""Errors the CLI reports as one clear message instead of a traceback.

Every class here subclasses ConfigError, so `except ConfigError` in the CLI reports them all as one
line with exit code 1; the subclasses only let callers and tests tell the causes apart.
"""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


class UnsoundTrainingError(ConfigError):
    """A stage trained something unusable (non-finite loss or weights, a metric under its floor);
    its artifact is left unfinished (`.partial`) and the message names the metric and the key to change."""


class ArtifactLockedError(ConfigError):
    """Another run holds an artifact's lock longer than the configured wait."""
