"""CPU kernels over batch rows in threads: shared by the compiled (numba, GIL-free) kernels of every backend.

The slices run on torch's own OpenMP team when the OpenMP runtime torch loaded can be found (Linux; its
`GOMP_parallel` entry point, which GNU, LLVM and Intel OpenMP all export): between two torch ops that team's idle
threads spin waiting for work, so a separate pool of ours would fight them for the cores (measured on a 2-core
machine: the fused membrane kernels ran 1.6-2x slower in a training step than alone). Elsewhere, or with
`BRAINLAB_KERNEL_THREADS=pool`, a thread pool of our own runs them.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

_POOL: ThreadPoolExecutor | None = None
_OUTLINED = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_OMP_NAMES = ("libgomp", "libomp", "libiomp")


def loaded_openmp() -> Path | None:
    """The OpenMP runtime torch loaded, from the process's memory map (one shipped inside torch's install first,
    should another package have loaded its own); None off Linux or when none is loaded."""
    maps = Path("/proc/self/maps")
    if not sys.platform.startswith("linux") or not maps.exists():
        return None
    found: list[Path] = []
    for line in maps.read_text().splitlines():
        path = Path(line.split()[-1]) if line.split() else Path()
        if str(path).startswith("/") and path.name.startswith(_OMP_NAMES) and path not in found:
            found.append(path)
    home = Path(torch.__file__).resolve().parent
    ours = [p for p in found if p.resolve().is_relative_to(home) or p.parent.name == "torch.libs"]
    return (ours or found or [None])[0]


class OpenMPTeam:
    """Runs `fn(slice index)` on every thread of an OpenMP parallel region of the runtime at `path`."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))  # the already loaded library: the same runtime and thread pool as torch's
        self._parallel = lib.GOMP_parallel
        self._parallel.argtypes = [_OUTLINED, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._thread_num, self._num_threads = lib.omp_get_thread_num, lib.omp_get_num_threads
        self._thread_num.restype = self._num_threads.restype = ctypes.c_int
        self._jobs: dict[int, tuple[int, Callable[[int], None], list[BaseException]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._body = _OUTLINED(self._run_share)  # kept alive as long as the team

    def _run_share(self, key: Any) -> None:
        slices, fn, errors = self._jobs[int(key)]
        team = max(1, self._num_threads())
        try:  # a smaller team than asked (nested regions, thread limits): each thread takes every team-th slice
            for k in range(self._thread_num(), slices, team):
                fn(k)
        except BaseException as err:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(err)

    def run(self, slices: int, fn: Callable[[int], None]) -> None:
        with self._lock:
            key = next(self._ids)
        errors: list[BaseException] = []
        self._jobs[key] = (slices, fn, errors)
        try:
            self._parallel(self._body, ctypes.c_void_p(key), slices, 0)
        finally:
            del self._jobs[key]
        if errors:
            raise errors[0]


_TEAM: OpenMPTeam | None | bool = False  # False: not looked up yet


def openmp_team() -> OpenMPTeam | None:
    """torch's OpenMP team, or None (not found, or `BRAINLAB_KERNEL_THREADS=pool`)."""
    global _TEAM
    if _TEAM is False:
        path = None if os.environ.get("BRAINLAB_KERNEL_THREADS", "openmp") == "pool" else loaded_openmp()
        try:
            _TEAM = OpenMPTeam(path) if path is not None else None
        except (OSError, AttributeError):  # a runtime without the GNU entry points
            _TEAM = None
    return _TEAM or None


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="brainlab-kernels")
    return _POOL


def rows_in_parallel(batch: int, fn: Callable[[int, int], None]) -> None:
    """Call `fn(lo, hi)` on contiguous batch slices, one per torch CPU thread (on torch's OpenMP team if found)."""
    workers = max(1, min(torch.get_num_threads(), batch))
    if workers == 1 or batch < 4:
        fn(0, batch)
        return
    edges = np.linspace(0, batch, workers + 1).astype(int)

    def share(k: int) -> None:
        fn(int(edges[k]), int(edges[k + 1]))

    team = openmp_team()
    if team is not None:
        team.run(workers, share)
        return
    for future in [_pool(workers).submit(share, k) for k in range(workers)]:
        future.result()
