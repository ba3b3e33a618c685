"""Entry scripts run in-process as their own `__main__` (runpy), and the root logger restored after them."""

from __future__ import annotations

import logging
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def own_logging() -> Iterator[None]:
    """The root logger as it was: a run that gets as far as Hydra's job logging leaves handlers on streams (the
    test's captured ones) and on the run's log file, which later tests must not write to."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def run_script(script: Path, *args: str) -> int:
    """`python <script> <args>` in this process: the script's own `__main__` code; returns its exit status."""
    saved = sys.argv
    sys.argv = [str(script), *args]
    try:
        with own_logging():
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved
    return 0
