"""`key=value` arguments of the tools that have no config tree of their own (export, measure, the NAB scorer)."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence

from brainlab.core.errors import ConfigError


def closest(key: str, known: Sequence[str]) -> str:
    """` (did you mean x?)` for the nearest known key, or nothing."""
    match = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def key_values(tool: str, argv: Sequence[str], known: Mapping[str, str | None],
               old_positional: str | None = None) -> dict[str, str | None]:
    """`key=value` arguments over `known`'s defaults; an unknown key or a stray word is one ConfigError.

    For one release a tool's old form is still read, with one deprecation line: `--key value` and (for the key
    named by `old_positional`) a bare first word.
    """
    values: dict[str, str | None] = dict(known)
    old: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" not in arg and i + 1 < len(args):
            key, value, i = arg[2:].replace("-", "_"), args[i + 1], i + 2
            old.append(f"{key}={value}")
        elif "=" in arg:
            key, value = arg.split("=", 1)
            key, i = key.lstrip("-"), i + 1
        elif old_positional and i == 0:
            key, value, i = old_positional, arg, i + 1
            old.append(f"{key}={value}")
        else:
            raise ConfigError(f"{tool}: {arg!r} is not a key=value argument; keys: {', '.join(known)}")
        if key not in known:
            raise ConfigError(f"{tool}: unknown key {key!r}{closest(key, list(known))}; keys: {', '.join(known)}")
        values[key] = value
    if old:
        print(f"warning: {tool}: this argument form is deprecated and goes in the next release; use "
              f"{' '.join(old)}", file=sys.stderr)
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ConfigError(f"{tool}: {missing[0]}=<...> is required")
    return values
