"""The one error boundary of every entry point (train, eval, bench, export, params, measure, nab-score).

An error ends the program with one `error:` line on stderr and an exit status (docs/reliability.md): 2 for bad
input (a config value, a file, a checkpoint, an output dir: the line names it and the fix), 1 for an unexpected
error (the line names the file holding the traceback). No traceback reaches the terminal unless asked for with
`HYDRA_FULL_ERROR=1`; the full traceback goes into the run's log file (Hydra's `<task>.log` in the run dir), or,
before a run dir exists (config composition), into a file the line names.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brainlab.core.errors import BrainlabError, ConfigError, find_brainlab_error, worker_original

log = logging.getLogger(__name__)

BAD_INPUT = 2
UNEXPECTED = 1

#: OS errors that mean the input (a path the user chose) is unusable, with what to do
WRITE_FIXES = {
    errno.EACCES: "pick a writable folder (hydra.run.dir=..., paths.log_dir=..., or the cache's dir)",
    errno.EPERM: "pick a writable folder (hydra.run.dir=..., paths.log_dir=..., or the cache's dir)",
    errno.EROFS: "the file system is read-only: pick a writable folder (hydra.run.dir=..., paths.log_dir=...)",
    errno.ENOSPC: "the disk is full: free space there, or write elsewhere (hydra.run.dir=..., paths.log_dir=...)",
    errno.EDQUOT: "the disk quota is used up: free space there, or write elsewhere (hydra.run.dir=...)",
    errno.ENOTDIR: "a part of the path is a file, not a folder: pick another path",
    errno.EISDIR: "the path is a folder where a file was expected: point it at a file",
    errno.ENOENT: "the path does not exist: check it",
}


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def os_error(exc: BaseException) -> BrainlabError | None:
    """An OSError about a path the user chose, as one bad-input line naming the file."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in WRITE_FIXES and current.filename:
            return ConfigError(f"cannot use {current.filename}: {current.strerror}: {WRITE_FIXES[current.errno]}")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(text: str) -> str:
    """A multi-line message (Hydra's) as one line."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    lines = [line for line in lines if line and not line.startswith("Set the environment variable HYDRA_FULL")]
    return "; ".join(lines)


def worker_message(text: str) -> str:
    """`text`, or the original message where it is torch's re-raise of an error from a DataLoader worker."""
    original = worker_original(text)
    return original[1] if original else text


def worker_traceback(exc: BaseException) -> str:
    """The DataLoader worker's traceback behind `exc` (torch puts it in the re-raised error's message), or ''."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        kept = getattr(current, "worker_traceback", "") or (str(current) if worker_original(str(current)) else "")
        if kept:
            return kept
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ""


def log_files() -> list[Path]:
    """The files the logging system writes (Hydra's job log in the run dir)."""
    return [Path(h.baseFilename) for h in file_handlers()]


def file_handlers() -> list[logging.FileHandler]:
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).is_file()]


def save_traceback(exc: BaseException, output_dir: str | Path | None = None) -> Path | None:
    """The full traceback into the run's log file, else `<output_dir>/error.log`, else a temp file; its path."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    worker = worker_traceback(exc)
    if worker:
        text += f"\nthe DataLoader worker's traceback:\n{worker}"
    files = log_files()
    if files:
        record = logging.LogRecord("brainlab", logging.ERROR, __file__, 0, "the full traceback:\n%s", (text,), None)
        for handler in file_handlers():
            handler.handle(record)
            handler.flush()
        return files[0]
    candidates = []
    if output_dir is not None and Path(output_dir).is_dir():
        candidates.append(Path(output_dir) / "error.log")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidates.append(Path(tempfile.gettempdir()) / f"brainlab-error-{stamp}-{os.getpid()}.log")
    for path in candidates:
        try:
            with open(path, "a", encoding="utf-8") as file:
                file.write(text)
            return path
        except OSError:
            continue
    return None


def report(exc: BaseException, output_dir: str | Path | None = None, known: BrainlabError | None = None) -> int:
    """Say `exc` in one `error:` line on stderr (its traceback saved); returns the exit status.

    With `HYDRA_FULL_ERROR=1` the exception propagates instead (its traceback printed)."""
    if full_error():
        raise exc
    known = known or find_brainlab_error(exc) or os_error(exc)
    where = save_traceback(exc, output_dir)
    if known is not None:
        line, status = one_line(worker_message(str(known))), BAD_INPUT
    else:
        cause = exc.__cause__ if exc.__cause__ is not None and not str(exc).strip() else exc
        detail = f" (the traceback is in {where}; HYDRA_FULL_ERROR=1 prints it)" if where else ""
        original = worker_original(str(cause))
        what = f"{type(cause).__name__} {original[0]}: {original[1]}" if original else \
            f"{type(cause).__name__}: {cause}"
        line, status = f"unexpected {one_line(what)}{detail}", UNEXPECTED
    log.debug("%s", line)
    print(f"error: {line}", file=sys.stderr)
    return status


def hydra_error(exc: BaseException) -> BrainlabError | None:
    """Hydra's own composition errors (an unknown key, a missing group option, a bad override) as one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if find_brainlab_error(exc) is not None or not isinstance(exc, HydraException | OmegaConfBaseException):
        return None
    text = str(exc)
    override = getattr(exc, "override", None)
    if override:
        return ConfigError(f"cannot parse the override {override!r}: {one_line(text)}")
    if text.startswith("Could not override '") and "not in struct" in str(exc.__cause__ or ""):
        key = text.split("'", 2)[1]
        return ConfigError(f"{key} is not a key of this config: check its spelling (python train.py --cfg job "
                           "lists every key); +key=value adds a key only where the plug takes it")
    if "Config group override must be a string or a list" in text:
        groups = [arg.split("=", 1)[0] for arg in sys.argv[1:] if arg.endswith("=null") and "." not in arg]
        group = groups[0] if groups else "<group>"
        return ConfigError(f"{group}=null cannot switch a config group off: use ~{group} (none of it), or "
                           f"{group}.<entry>=null for one entry")
    cause = f"; {one_line(str(exc.__cause__))}" if isinstance(exc.__cause__, OmegaConfBaseException) else ""
    return ConfigError(one_line(text) + cause)


@contextmanager
def hydra_one_line_errors() -> Iterator[None]:
    """While `@hydra.main` runs: errors Hydra reports itself (config composition, run-dir callbacks) are one line,
    status 2 for bad input; HYDRA_FULL_ERROR=1 keeps Hydra's own report."""
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report

    def run_and_report(func):  # noqa: ANN001, ANN202 - Hydra's signature
        if full_error():
            return original(func)
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - the boundary
            raise SystemExit(report(exc, known=hydra_error(exc))) from None

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original


__all__ = ["report", "hydra_one_line_errors", "save_traceback", "os_error", "BAD_INPUT", "UNEXPECTED"]
