"""Shared fixtures: configs composed in-process from `conf/` (the configs' own users), outputs in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from helpers.config import CONF, ROOT, TINY, compose_cfg  # noqa: F401 - re-exported to fixtures
from helpers.config import tiny as tiny_overrides
from omegaconf import DictConfig

from brainlab.bench.timing import usable_cores


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg(*overrides, tiny=True, keep=())` -> a composed config whose run dir is tmp_path/run (`keep`: the
    callbacks TINY switches off that the test is about)."""

    def make(*overrides: str, tiny: bool = True, keep: tuple[str, ...] = ()) -> DictConfig:
        return compose_cfg(tmp_path / "run", [*(tiny_overrides(*keep) if tiny else []), *overrides])

    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[Path, DictConfig]:
    """One tiny trained run (its run dir and config) for the tests that only read a checkpoint: trained once per
    session, and once for all xdist workers (they share the session's base temp folder, under a file lock)."""
    from filelock import FileLock

    from brainlab.train import run

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # the session's folder, the same for every worker
    out = shared / "trained_run"
    cfg = compose_cfg(out, [*TINY, "trainer.limit_train_batches=3", "logger=csv"])
    with FileLock(str(shared / "trained_run.lock")):
        if not (out / "metrics.json").is_file():
            run(cfg)
    return out, cfg


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the test (small step-heavy models run faster so)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, each worker's torch (and the processes its tests start) gets its share of the cores: two workers
    with two intra-op threads each would oversubscribe the CPU, and busy-waiting OpenMP threads then stall."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, usable_cores() // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`heavy`-marked tests run first (under xdist the long ones then overlap instead of ending the run on one
    worker); `gpu`-marked tests skip cleanly without CUDA."""
    items.sort(key=lambda item: "heavy" not in item.keywords)  # stable: the rest keep their order
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
