"""Every run leaves a record: resolved config, git commit, installed packages, seed, command line."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brainlab.core.atomic import atomic_write_text


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the code runs from (None outside git)."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def installed_packages() -> list[str]:
    """`pip freeze`-style `name==version` lines of the running environment."""
    return list(_installed_packages())


@functools.cache
def _installed_packages() -> tuple[str, ...]:
    """Read once per process (~0.25 s of metadata; a multirun's jobs share the interpreter and its packages)."""
    found = {(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}
    return tuple(sorted(f"{name}=={version}" for name, version in found.items() if name))


def write_record(cfg: DictConfig, output_dir: Path, seed: int, resumed_from: str | None = None) -> Path:
    """Write `record/` into the run dir; returns its path. `resumed_from`: the checkpoint a resumed run started
    from (None for a fresh run)."""
    record = output_dir / "record"
    record.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    # with its interpolations, so that eval.py can re-point paths.output_dir at a new run dir
    atomic_write_text(record / "config.unresolved.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(record / "requirements.txt", "\n".join(installed_packages()) + "\n")
    info = {
        "seed": seed,
        "git": git_state(),
        "command": [sys.executable, *sys.argv],
        "python": platform.python_version(),
        "host": platform.node(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resumed_from": resumed_from,
    }
    atomic_write_text(record / "run.json", json.dumps(info, indent=2))
    return record


def add_to_record(output_dir: Path, **fields: Any) -> None:
    """Add `fields` to `record/run.json` of a run dir (written by `write_record`), e.g. the bad samples a run's
    data setup dropped (known only after setup)."""
    path = output_dir / "record" / "run.json"
    if not path.is_file():
        return
    info = json.loads(path.read_text())
    info.update(fields)
    atomic_write_text(path, json.dumps(info, indent=2))
