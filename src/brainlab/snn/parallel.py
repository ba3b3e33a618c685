"""CPU kernels over batch rows in threads: shared by the compiled (numba, GIL-free) kernels of every backend."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_POOL: ThreadPoolExecutor | None = None


def rows_in_parallel(batch: int, fn: Callable[[int, int], None]) -> None:
    """Call `fn(lo, hi)` on contiguous batch slices, one per torch CPU thread."""
    global _POOL
    workers = max(1, min(torch.get_num_threads(), batch))
    if workers == 1 or batch < 4:
        fn(0, batch)
        return
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="brainlab-kernels")
    edges = np.linspace(0, batch, workers + 1).astype(int)
    for future in [_POOL.submit(fn, int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]:
        future.result()
