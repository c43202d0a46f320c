"""Errors the CLI reports as one clear message instead of a traceback, and the one choice check."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices`; otherwise a ConfigError naming the key and the valid options."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value  # type: ignore[return-value]
