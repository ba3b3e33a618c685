"""`cache=gpu`: the packed set resident on the device, batches gathered and densified there, no workers.

The CUDA tests are marked `gpu` (they skip without CUDA); the same path runs on the CPU with
`cache.device=cpu` in the default run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.config import TINY, compose_cfg
from hydra.utils import instantiate

from brainlab.core.errors import ConfigError, find_brainlab_error
from brainlab.data.caching import DeviceBatches, DeviceFrames, MemoryCache
from brainlab.data.sampler import SeededSampler


def datamodule(tmp_path: Path, *overrides: str):
    cfg = compose_cfg(tmp_path / "run", [*TINY, *overrides])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    return dm


def frames_of(loader) -> tuple[np.ndarray, np.ndarray]:
    batches = list(loader)
    return (torch.cat([b[0] for b in batches]).cpu().numpy(), torch.cat([b[1] for b in batches]).cpu().numpy())


def check_same_as_none(tmp_path: Path, device: str) -> None:
    none = datamodule(tmp_path, "cache=none")
    gpu = datamodule(tmp_path, "cache=gpu", f"cache.device={device}", "data.num_workers=2")  # ignored
    for split in ("val", "test"):  # unshuffled: the same frames in the same order
        loader = gpu.loader(split, shuffle=False)
        assert isinstance(loader, DeviceBatches), "no DataLoader (and so no workers) for cache=gpu"
        first = next(iter(loader))
        assert first[0].device.type == device and first[1].device.type == device
        got, want = frames_of(loader), frames_of(none.loader(split, shuffle=False))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    store = gpu.datasets["train"]
    assert isinstance(store, DeviceFrames) and store.values.device.type == device
    assert store.indices.dtype == torch.int32 and store.values.dtype == torch.uint8, "compact on the device"
    dense = len(store) * store.frame_size * 4
    assert store.nbytes < dense / 3, f"{store.nbytes} B on the device vs {dense} B dense"
    epoch = frames_of(gpu.train_dataloader())  # shuffled: every training sample once
    want = frames_of(none.loader("train", shuffle=False))
    assert sorted(epoch[1].tolist()) == sorted(want[1].tolist())
    assert np.isclose(epoch[0].sum(), want[0].sum())


def test_gpu_cache_path_on_the_cpu_returns_what_none_returns(tmp_path: Path) -> None:
    check_same_as_none(tmp_path, "cpu")


@pytest.mark.gpu
def test_gpu_cache_on_cuda_returns_what_none_returns(tmp_path: Path) -> None:
    check_same_as_none(tmp_path, "cuda")


@pytest.mark.gpu
def test_gather_on_cuda_takes_host_or_device_indices(tmp_path: Path) -> None:
    dm = datamodule(tmp_path, "cache=memory")
    packed = dm.datasets["test"]
    store = DeviceFrames(packed, torch.device("cuda"))
    idx = torch.tensor([3, 0, 7, 3])
    want, targets = packed.dense(idx.numpy())
    for where in ("cpu", "cuda"):
        frames, got = store.gather(idx.to(where))
        assert frames.is_cuda
        np.testing.assert_array_equal(frames.cpu().numpy(), want)
        np.testing.assert_array_equal(got.cpu().numpy(), targets)


def test_without_cuda_cache_gpu_is_one_clear_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    cfg = compose_cfg(tmp_path / "run", [*TINY, "cache=gpu"])
    with pytest.raises(Exception) as err:  # noqa: PT011 - instantiate wraps it: unwrapped below
        instantiate(cfg.data, _convert_="all")
    error = find_brainlab_error(err.value)
    assert isinstance(error, ConfigError) and "cache.device=cpu" in str(error) and "\n" not in str(error)


def test_epochs_are_seeded_and_ranks_share_no_sample(monkeypatch) -> None:
    import brainlab.data.sampler as sampler_module

    packed = MemoryCache().wrap([(np.full((2, 3), i, np.float32), i % 4) for i in range(11)], "k")
    store = DeviceFrames(packed, torch.device("cpu"))
    torch.manual_seed(0)
    a = DeviceBatches(store, 4, shuffle=True, drop_last=False)
    torch.manual_seed(123)  # the order depends on the sampler's seed and the epoch, never on the global RNG
    b = DeviceBatches(store, 4, shuffle=True, drop_last=False, sampler=SeededSampler(11, seed=a.sampler.seed))
    first_a, first_b = frames_of(a)[0][:, 0, 0], frames_of(b)[0][:, 0, 0]
    np.testing.assert_array_equal(first_a, first_b)  # same seed: same order
    assert sorted(first_a.tolist()) == list(range(11))
    np.testing.assert_array_equal(frames_of(a)[0][:, 0, 0], first_a)  # the same epoch again: the same order
    a.sampler.set_epoch(1)
    assert not np.array_equal(frames_of(a)[0][:, 0, 0], first_a), "a new order each epoch"
    seen = []
    for rank in (0, 1):  # two DDP ranks: equal batch counts, disjoint samples (one repeat to even out)
        monkeypatch.setattr(sampler_module, "shard", lambda r=rank: (r, 2))
        shard = DeviceBatches(store, 4, shuffle=True, drop_last=False, sampler=SeededSampler(11, seed=0))
        assert len(shard) == 2
        seen += frames_of(shard)[0][:, 0, 0].tolist()
    assert len(seen) == 12 and set(seen) == set(range(11))
