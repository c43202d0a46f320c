"""Errors the CLI reports as one clear message instead of a traceback."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""
