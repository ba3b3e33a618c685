"""Loader settings every DataModule shares: one validation, one way to build a DataLoader.

`data.batch_size`, `data.num_workers`, `data.pin_memory` and `data.drop_last` mean the same for every dataset:
workers persist across epochs when there are any, and `drop_last` applies to the shuffled (training) loader only,
so evaluation always sees every sample.

`build_loader` is the one DataLoader builder (the DataModules' and the cache strategies'): its order comes from a
`brainlab.data.sampler.SeededSampler` keyed by (seed, epoch), its worker seeds from a private generator, and
(for datasets that may draw while fetching) each sample is fetched under RNGs seeded by (seed, epoch, index), so
iterating a loader never touches the global RNG and the numbers do not depend on the worker count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.data.sampler import SeededItems, SeededSampler, run_seed


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
        """A DataLoader over `dataset` with these settings (`sampler` replaces the seeded default)."""
        return build_loader(dataset, sampler, collate_fn=collate_fn, **self.options(shuffle))


class SeededDataLoader(DataLoader):
    """A DataLoader that declares itself resumable to Lightning (`state_dict`/`load_state_dict`): its order is its
    sampler's, a function of (seed, epoch), and a resumed run's position is set by the resume-state callback
    before the loader is iterated."""

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict() if isinstance(self.sampler, SeededSampler) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load: the callback has set the position, and the epoch comes from Lightning."""


def build_loader(dataset: Dataset, sampler: Sampler | None = None, *, shuffle: bool = False,
                 batch_size: int | None = 1, drop_last: bool = False, num_workers: int = 0, pin_memory: bool = False,
                 collate_fn: Callable | None = None, per_sample_seeds: bool = True) -> DataLoader:
    """A DataLoader whose batches depend only on the run's seed and the epoch (see the module docstring).

    `sampler`: a `SeededSampler` (made here when None, shuffled with `shuffle`) or any other sampler (kept as it
    is). `per_sample_seeds=False` for stores that draw nothing while fetching (the packed caches).
    """
    if sampler is None:
        sampler = SeededSampler(len(dataset), shuffle=shuffle, drop_last=drop_last)  # type: ignore[arg-type]
    seed = sampler.seed if isinstance(sampler, SeededSampler) else run_seed()
    if per_sample_seeds and isinstance(sampler, SeededSampler):
        sampler.tag_epochs = True
        dataset = SeededItems(dataset, seed)
    return SeededDataLoader(dataset, sampler=sampler, batch_size=batch_size, drop_last=drop_last,
                            num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0,
                            collate_fn=collate_fn, generator=torch.Generator().manual_seed(seed))
