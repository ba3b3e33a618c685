"""Errors that carry one clear line for the user: what is wrong and how to fix it."""

from __future__ import annotations


class BrainlabError(Exception):
    """Base of every error brainlab reports to the user as one line."""


class ConfigError(BrainlabError, ValueError):
    """A config value is invalid; the message names the key and the fix."""


class DataError(BrainlabError, RuntimeError):
    """A dataset or cache file is missing or corrupt; the message says where and what to do."""


class TrainingError(BrainlabError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says what to change."""


def find_brainlab_error(exc: BaseException) -> BrainlabError | None:
    """Return the BrainlabError behind `exc` (Hydra wraps errors raised while instantiating)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BrainlabError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
