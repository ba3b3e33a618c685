"""Same command + same seed = the same numbers, whatever the cache strategy; loaders never touch the global RNG, and
draws made while fetching do not depend on the worker count or on a resume."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from helpers.config import TINY, compose_cfg

from brainlab.data.loaders import build_loader
from brainlab.data.sampler import SeededSampler
from brainlab.train import run

COMMON = [*TINY, "trainer.deterministic=true", "seed=7", "trainer.max_epochs=2", "logger=csv",
          "callbacks.snn_media=null", "callbacks.neuromorphic=null", "callbacks.spike_stats=null"]


def test_every_cache_strategy_gives_bit_identical_metrics(tmp_path: Path) -> None:
    disk = ["cache=disk", f"cache.root={tmp_path / 'cache'}"]
    caches = {"none": ["cache=none"], "memory": ["cache=memory"], "disk cold": disk, "disk warm": disk,
              "gpu": ["cache=gpu", "cache.device=cpu"]}
    results = {name: run(compose_cfg(tmp_path / name.replace(" ", "_"), [*COMMON, *overrides]))
               for name, overrides in caches.items()}
    want = results["none"]
    for name, got in results.items():
        for key in ("train/loss_epoch", "val/loss", "test/loss", "test/acc"):
            assert got[key] == want[key], f"{key}: {name} {got[key]!r} vs none {want[key]!r}"


class Drawing(torch.utils.data.Dataset):
    """Items that draw from torch, numpy and python's global RNGs (as a random transform would)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([index, torch.rand(()).item(), np.random.rand(), random.random()])


def epochs(num_workers: int, resume: tuple[int, int] | None = None) -> list[torch.Tensor]:
    sampler = SeededSampler(10, shuffle=True, seed=5)
    if resume:
        sampler.resume(*resume)
    loader = build_loader(Drawing(), sampler, batch_size=3, num_workers=num_workers)
    out = []
    for epoch in (resume[0] if resume else 0, 1):
        sampler.set_epoch(epoch)
        out += list(loader)
    return out


def test_draws_while_fetching_do_not_depend_on_workers_or_resume_and_leave_the_global_rng_alone() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    alone = epochs(0)
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    assert random.getstate() == before[2], "iterating a loader draws nothing from the global RNGs"
    assert len(alone) == 8  # 4 batches per epoch
    for got, want in zip(epochs(2), alone, strict=True):
        assert torch.equal(got, want), "the same batches with 2 workers"
    resumed = epochs(2, resume=(0, 2 * 3))  # after the first two batches of epoch 0
    for got, want in zip(resumed, alone[2:], strict=True):
        assert torch.equal(got, want), "a resumed loader serves what the uninterrupted one served next"
    assert not torch.equal(alone[0][:, 1], alone[4][:, 1]), "a new order and new draws each epoch"
