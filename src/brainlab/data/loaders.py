"""Loader settings every DataModule shares: one validation, one way to build a DataLoader.

`data.batch_size`, `data.num_workers`, `data.pin_memory` and `data.drop_last` mean the same for every dataset:
workers persist across epochs when there are any, and `drop_last` applies to the shuffled (training) loader only,
so evaluation always sees every sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError


def worker_count(num_workers: Any) -> int:
    """`data.num_workers` as an int >= 0 (a bool is not a worker count)."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
    return num_workers


@dataclass(frozen=True)
class LoaderSettings:
    """Validated loader knobs; `batch_size=None` for datasets whose items are whole batches."""

    batch_size: int | None
    num_workers: int = 0
    pin_memory: bool = False
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", positive_int("data.batch_size", self.batch_size))
        object.__setattr__(self, "num_workers", worker_count(self.num_workers))
        object.__setattr__(self, "pin_memory", bool(self.pin_memory))
        object.__setattr__(self, "drop_last", bool(self.drop_last))

    @property
    def persistent_workers(self) -> bool:
        return self.num_workers > 0

    def options(self, shuffle: bool) -> dict[str, Any]:
        """The keyword arguments of a loader over one split (what a cache strategy's `loader` takes)."""
        return {"batch_size": self.batch_size, "shuffle": shuffle, "drop_last": self.drop_last and shuffle,
                "num_workers": self.num_workers, "pin_memory": self.pin_memory}

    def dataloader(self, dataset: Dataset, *, shuffle: bool = False, sampler: Sampler | None = None,
                   collate_fn: Callable | None = None) -> DataLoader:
        """A DataLoader over `dataset` with these settings (`sampler` replaces shuffling)."""
        return DataLoader(dataset, sampler=sampler, collate_fn=collate_fn,
                          persistent_workers=self.persistent_workers, **self.options(shuffle))
