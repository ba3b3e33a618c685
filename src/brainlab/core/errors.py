"""Errors that carry one clear line for the user: what is wrong and how to fix it."""

from __future__ import annotations

import re

#: torch's message for an error it re-raises from a DataLoader worker (or its pin-memory thread)
_WORKER = re.compile(r"Caught (?P<name>\w+) (?P<where>in .+?)\.\nOriginal Traceback \(most recent call last\):\n")


def worker_original(text: str) -> tuple[str, str] | None:
    """`(where, original message)` of an error torch re-raised from a DataLoader worker (whose message holds the
    worker's whole traceback), or None for any other message."""
    head = _WORKER.match(text)
    if head is None:
        return None
    name = re.escape(head["name"])
    lines = text[head.end():].splitlines()
    for i in range(len(lines) - 1, -1, -1):  # the last unindented `[module.]Name: message` line is the error
        found = re.match(rf"(?:[\w.]+\.)?{name}(?::\s?(?P<first>.*))?$", lines[i])
        if found and not lines[i].startswith(" "):
            return head["where"], "\n".join([found["first"] or "", *lines[i + 1:]]).strip()
    return None


class BrainlabError(Exception):
    """Base of every error brainlab reports to the user as one line.

    Raised in a DataLoader worker, torch re-raises it in the main process with the worker's traceback as its
    message: the original message is kept instead, the worker's traceback in `worker_traceback` (the error
    boundary saves it with the rest)."""

    worker_traceback = ""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str) and (original := worker_original(args[0])) is not None:
            self.worker_traceback = args[0]
            args = (original[1], *args[1:])
        super().__init__(*args)


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
