"""Config-value checks shared by every layer: each refuses a bad value with one line naming the key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from brainlab.core.errors import ConfigError


def positive_int(key: str, value: Any) -> int:
    """Return `value` as an int, refusing anything that is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return value


def check_choice(key: str, value: str, choices: Iterable[str]) -> str:
    """Refuse a config value outside `choices` with one line naming the key."""
    options = sorted(choices)
    if value not in options:
        raise ConfigError(f"{key}={value!r} is not supported; choose one of: {', '.join(options)}")
    return value
