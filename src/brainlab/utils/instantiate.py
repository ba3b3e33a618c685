"""Build callbacks and loggers from dicts of `_target_` entries (an experiment adds/removes one by key)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from brainlab.core.errors import ConfigError, find_brainlab_error


def root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return " ".join(str(exc).split()) or type(exc).__name__


def instantiate_dict(cfg: DictConfig | None, group: str) -> list[Any]:
    """Instantiate every `_target_` entry of `cfg` (None entries are switched off)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{group} must be a dict of {{name: {{_target_: ...}}}}, got {type(cfg).__name__}")
    objects = []
    for name, entry in cfg.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ConfigError(f"{group}.{name} needs a `_target_` (or null to switch it off)")
        try:
            objects.append(instantiate(entry, _convert_="all"))
        except Exception as exc:
            if find_brainlab_error(exc) is not None:
                raise
            raise ConfigError(f"{group}.{name} ({entry.get('_target_')}) refused its settings: {root_cause(exc)}: "
                              f"fix the {group}.{name}.* value it names (or {group}.{name}=null)") from exc
    return objects
