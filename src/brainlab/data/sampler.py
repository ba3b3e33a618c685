"""One sampler for every loader and cache strategy: an epoch's order is a function of (seed, epoch) only.

`SeededSampler` serves the sample indices of one rank for one epoch: a permutation drawn from a private
generator seeded with (run seed, epoch) when shuffling, else `0..n-1`; under torch.distributed each rank takes
every world_size-th index of the same order (padded by wrapping, or cut with `drop_last`, as torch's
`DistributedSampler` does). It never touches the global RNG, so building or reading a cache cannot change the
numbers, and `cache=none|memory|disk|gpu` serve the same batches in the same order.

Exact resume: `resume(epoch, samples)` makes the iteration of that epoch start after the samples already served;
the other epochs are unchanged. Lightning sets the epoch (`set_epoch`); a resumed run sets the position before
the loader is iterated (`brainlab.callbacks.resume_state`).

Samples drawn in loader workers (a random transform) are made independent of the worker and of resumes by
`SeededItems`: each sample is fetched under RNGs seeded by (seed, epoch, index).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, get_worker_info


def run_seed() -> int:
    """The run's seed (`seed_everything` sets PL_GLOBAL_SEED), else torch's initial seed."""
    env = os.environ.get("PL_GLOBAL_SEED")
    return int(env) if env not in (None, "") else int(torch.initial_seed())


def mixed_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (well mixed: nearby parts give unrelated streams)."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def shard() -> tuple[int, int]:
    """(rank, world size) of torch.distributed, (0, 1) without it."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SeededSampler(DistributedSampler):
    """Indices of one rank for one epoch, in an order that depends only on (seed, epoch).

    A subclass of `DistributedSampler` (without its process-group constructor) so that Lightning keeps it under
    DDP instead of wrapping it: it shards by itself. `tag_epochs=True` yields `epoch * size + index` (for
    `SeededItems`, which seeds each fetch by epoch and index).
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int | None = None, drop_last: bool = False,
                 tag_epochs: bool = False) -> None:  # noqa: D107 - no super().__init__: see the class docstring
        self.size = int(size)
        self.shuffle = bool(shuffle)
        self.seed = run_seed() if seed is None else int(seed)
        self.drop_last = bool(drop_last)
        self.tag_epochs = tag_epochs
        self.epoch = 0
        self.start: tuple[int, int] | None = None  # (epoch, samples already served) of a resumed epoch

    # --- DistributedSampler's attributes, read at iteration time (the process group may start later) ---------
    @property
    def rank(self) -> int:  # type: ignore[override]
        return shard()[0]

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        return shard()[1]

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        """Samples this rank serves per epoch (equal on every rank)."""
        world = self.num_replicas
        if world == 1:
            return self.size
        return self.size // world if self.drop_last else -(-self.size // world)

    @property
    def total_size(self) -> int:  # type: ignore[override]
        return self.num_samples * self.num_replicas

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume(self, epoch: int, samples: int) -> None:
        """Start epoch `epoch` after its first `samples` samples (of this rank); later epochs are whole."""
        self.epoch = int(epoch)
        self.start = (int(epoch), max(0, int(samples)))

    def order(self, epoch: int) -> torch.Tensor:
        """This rank's indices of `epoch`, in order."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(mixed_seed(self.seed, epoch))
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        rank, world = shard()
        if world > 1:
            per = self.num_samples
            order = torch.cat([order, order[: max(0, per * world - self.size)]])[rank::world][:per]
        return order

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch)
        skip = 0
        if self.start is not None and self.start[0] == self.epoch:
            skip = self.start[1]
            self.start = None
        offset = self.epoch * self.size if self.tag_epochs else 0
        return iter((order[skip:] + offset).tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])


class SeededItems(Dataset):
    """`dataset[index]` fetched under torch, numpy and python RNGs seeded by (seed, epoch, index).

    Takes the tokens of a `SeededSampler(tag_epochs=True)` (`epoch * len + index`). A random transform then draws
    the same for a sample whichever worker fetches it, however many workers there are, and after a resume; in the
    main process (no workers) the global RNG states are restored after each fetch.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self.size = len(dataset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.size

    def __getattr__(self, name: str) -> Any:  # the wrapped dataset's attributes (classes, sensor_size...)
        if name == "dataset" or name.startswith("__"):  # never the wrapped `__getitems__` (it takes indices)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, token: int) -> Any:
        epoch, index = divmod(int(token), self.size)
        seed = mixed_seed(self.seed, epoch, index, 0x5EED)
        in_main = get_worker_info() is None
        if in_main:
            saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        # the CPU generator only (what a transform draws from, and all get/set_rng_state keep): torch.manual_seed
        # would also re-seed the CUDA generators (clobbering the training's) and, before CUDA starts, record a
        # stack trace on every call (~2 ms a sample)
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            if in_main:
                torch.set_rng_state(saved[0])
                np.random.set_state(saved[1])
                random.setstate(saved[2])
