"""Hydra callbacks: an existing run or sweep dir is never reused."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from brainlab.core.errors import ConfigError


def refuse_used_dir(path: str, key: str) -> None:
    """Refuse a directory that already holds files (a previous run would be overwritten)."""
    p = Path(path)
    if p.is_dir() and any(p.iterdir()):
        raise ConfigError(
            f"{key}={p} already holds a run; nothing was overwritten. Pick a new directory "
            f"({key}=...) or move the old one away"
        )


def stop_if_used(path: str, key: str) -> None:
    """Exit with one line (Hydra turns a callback's exceptions into warnings, so SystemExit it is)."""
    try:
        refuse_used_dir(path, key)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


class RefuseExistingRunDir(Callback):
    """Stops before Hydra writes into a run dir (or sweep dir) that holds an earlier run."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        stop_if_used(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        stop_if_used(config.hydra.sweep.dir, "hydra.sweep.dir")
