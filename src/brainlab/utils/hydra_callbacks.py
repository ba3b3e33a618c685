"""Hydra callbacks: an existing run or sweep dir is never reused (except to resume an Optuna sweep), and a multirun
ends with a summary of its failed jobs and a non-zero exit status when any failed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from brainlab.core.errors import ConfigError

#: exit status of a multirun in which a job failed (an Optuna sweep: in which no trial completed)
FAILED_JOBS_EXIT = 1
ERROR_FILE = "error.txt"


def refuse_used_dir(path: str, key: str) -> None:
    """Refuse a directory that already holds files (a previous run would be overwritten)."""
    p = Path(path)
    if p.is_dir() and any(p.iterdir()):
        raise ConfigError(
            f"{key}={p} already holds a run; nothing was overwritten. Pick a new directory "
            f"({key}=...) or move the old one away"
            + (" (an Optuna sweep continues with resume=true)" if key == "hydra.sweep.dir" else "")
        )


def is_optuna(config: DictConfig) -> bool:
    return "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()


def check_resume(config: DictConfig) -> None:
    """`resume=true` continues the Optuna study kept in the sweep dir: it must be there."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    if not is_optuna(config):
        raise ConfigError("resume=true continues an Optuna sweep (hparams_search=optuna); a grid multirun starts "
                          "in a new hydra.sweep.dir")
    storage = str(config.hydra.sweeper.get("storage") or "")
    legacy = sweep_dir / "optuna_trials.json"  # the study of sweep dirs of an earlier version: copied on resume
    if legacy.is_file():
        return
    if not storage:
        raise ConfigError(f"resume=true: hydra.sweeper.storage=null keeps the study in memory, nothing to continue in "
                          f"hydra.sweep.dir={sweep_dir}: resume a sweep that ran with a storage (the default "
                          "sqlite:///<sweep dir>/optuna.db)")
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"resume=true: no study to continue in hydra.sweep.dir={sweep_dir} (no "
                          f"{storage.removeprefix('sqlite:///')}): point hydra.sweep.dir at the sweep to resume")


def stop_with(err: ConfigError) -> None:
    """Exit with one line (Hydra turns a callback's exceptions into warnings, so SystemExit it is)."""
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None


def stop_if_used(path: str, key: str) -> None:
    try:
        refuse_used_dir(path, key)
    except ConfigError as err:
        stop_with(err)


def failed_jobs(sweep_dir: Path) -> tuple[list[tuple[int, str]], int]:
    """(job number, error line) of every failed job of a sweep dir, and the number of job dirs."""
    jobs = sorted((int(p.name), p) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()) \
        if sweep_dir.is_dir() else []
    failed = []
    for number, job in jobs:
        error = job / ERROR_FILE
        if error.is_file():
            lines = error.read_text().strip().splitlines() or ["failed"]
            failed.append((number, lines[0]))
    return failed, len(jobs)


class RefuseExistingRunDir(Callback):
    """Stops before Hydra writes into a run dir (or sweep dir) that holds an earlier run; `resume=true` lets an
    Optuna sweep continue in its own sweep dir. At the end of a multirun: the summary of failed jobs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        stop_if_used(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume", False):
            try:
                check_resume(config)
            except ConfigError as err:
                stop_with(err)
            return
        stop_if_used(config.hydra.sweep.dir, "hydra.sweep.dir")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed, total = failed_jobs(sweep_dir)
        if not failed:
            return
        lines = [f"{len(failed)} of {total} jobs failed (sweep dir {sweep_dir}):"]
        lines += [f"  job {number} ({sweep_dir / str(number)}): {error}" for number, error in failed]
        optuna = is_optuna(config)
        if optuna:
            lines.append("  the study records them as failed trials (optimization_results.yaml lists them)")
        print("\n".join(lines), file=sys.stderr)
        if not optuna or len(failed) == total:
            raise SystemExit(FAILED_JOBS_EXIT)
