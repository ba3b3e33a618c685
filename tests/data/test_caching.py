"""Cache strategies serve exactly the frames `none` serves; the disk cache's key, atomicity and repair."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.config import compose_cfg
from helpers.events import make_ssc
from hydra.utils import instantiate
from tonic.transforms import Compose, ToFrame

from brainlab.core.errors import ConfigError  # noqa: E402
from brainlab.data.augment import ChannelDrop, RandomFlip, TimeShift  # noqa: E402
from brainlab.data.caching import (  # noqa: E402
    DeviceFrames,
    DiskCache,
    GpuCache,
    MemoryCache,
    NoCache,
    PackedFrames,
)
from brainlab.data.events import Chain, FixedTimeBins  # noqa: E402
from brainlab.data.synthetic import SyntheticEvents  # noqa: E402


def source(n_channels: int = 16, window: int = 20_000) -> SyntheticEvents:
    transform = Chain(Compose([ToFrame(sensor_size=(n_channels, 1, 1), time_window=window, start_time=0,
                                       end_time=200_000)]), FixedTimeBins(10))
    return SyntheticEvents(n_classes=3, n_channels=n_channels, duration_us=200_000, samples_per_class=4,
                           transform=transform)


def all_items(dataset) -> tuple[np.ndarray, list[int]]:
    items = [dataset[i] for i in range(len(dataset))]
    return np.stack([np.asarray(f) for f, _ in items]), [int(t) for _, t in items]


@pytest.mark.parametrize("strategy", ["memory", "disk", "gpu_on_cpu"])
def test_every_strategy_returns_the_frames_none_returns(strategy: str, tmp_path: Path) -> None:
    data = source()
    ref_frames, ref_targets = all_items(NoCache().wrap(data, "k"))
    assert ref_frames.sum() > 0
    caches = {"memory": MemoryCache, "disk": lambda: DiskCache(tmp_path),
              "gpu_on_cpu": lambda: GpuCache("cpu")}
    cache = caches[strategy]()
    wrapped = cache.wrap(data, "synthetic/train/abc")
    frames, targets = all_items(wrapped)
    np.testing.assert_array_equal(frames, ref_frames)
    assert targets == ref_targets
    # batches through the strategy's own loader: every sample once per epoch, frames unchanged
    batches = list(cache.loader(wrapped, batch_size=5, shuffle=True))
    got = torch.cat([b[0] for b in batches]).numpy()
    assert got.shape == ref_frames.shape
    order = np.argsort([float((f * np.arange(f.size).reshape(f.shape)).sum()) for f in got])
    ref_order = np.argsort([float((f * np.arange(f.size).reshape(f.shape)).sum()) for f in ref_frames])
    np.testing.assert_array_equal(got[order], ref_frames[ref_order])


def test_disk_cache_is_reused_across_runs_and_smaller_than_dense(tmp_path: Path) -> None:
    data = source()
    DiskCache(tmp_path).wrap(data, "s/train/k1")
    entry = tmp_path / "s/train/k1"
    mtime = (entry / "values.npy").stat().st_mtime_ns
    again = DiskCache(tmp_path).wrap(source(), "s/train/k1")  # a second run: served, not rebuilt
    assert (entry / "values.npy").stat().st_mtime_ns == mtime
    assert isinstance(again, PackedFrames)
    stored = sum(f.stat().st_size for f in entry.iterdir())
    assert stored < all_items(data)[0].nbytes


def test_truncated_or_flipped_entry_is_reported_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    data = source()
    ref_frames, _ = all_items(data)
    cache = DiskCache(tmp_path)
    cache.wrap(data, "s/train/k")
    values = tmp_path / "s/train/k/values.npy"
    values.write_bytes(values.read_bytes()[:-7])  # truncated
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = cache.wrap(data, "s/train/k")
    np.testing.assert_array_equal(all_items(rebuilt)[0], ref_frames)
    aside = [p for p in (tmp_path / "s/train").iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1, "the corrupt entry is kept aside, not overwritten"
    # same size, one byte changed: the crc32 check catches it
    blob = bytearray(values.read_bytes())
    blob[-1] ^= 0xFF
    values.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="crc32"):
        rebuilt = cache.wrap(data, "s/train/k")
    np.testing.assert_array_equal(all_items(rebuilt)[0], ref_frames)


def _build(root: str, barrier) -> None:  # runs in a child process
    barrier.wait()
    DiskCache(root).wrap(source(), "s/train/race")


def test_runs_building_the_same_entry_at_once_leave_one_valid_entry(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_build, args=(str(tmp_path), barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    names = sorted(p.name for p in (tmp_path / "s/train").iterdir())
    assert names == ["race"], f"no temp or half-written entries left: {names}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(all_items(DiskCache(tmp_path).wrap(source(), "s/train/race"))[0],
                                      all_items(source())[0])


# every transform parameter, one at a time (with n_time_bins where the frame count changes with it)
SSC_KNOBS = [
    ["data.transform.transforms.0.spatial_factor=0.1"],
    ["+data.transform.transforms.0.time_factor=0.5"],
    ["data.transform.transforms.1.max=900000"],
    ["+data.transform.transforms.1.min=1000"],
    ["data.transform.transforms.2.time_window=5000", "data.n_time_bins=200"],
    ["data.transform.transforms.2.include_incomplete=false"],
    ["data.transform.transforms.2.start_time=1000"],
    ["data.transform.transforms.2.end_time=800000", "data.n_time_bins=200"],
    ["+data.transform.transforms.2.overlap=2000", "data.n_time_bins=499"],
    ["data.n_channels=120"],
]


def test_cache_key_changes_with_every_transform_parameter(tmp_path: Path) -> None:
    root = make_ssc(tmp_path / "ssc", train=2, valid=1, test=1)

    def entries(*overrides: str) -> set[str]:
        cache_root = tmp_path / "cache"
        before = set(map(str, cache_root.rglob("meta.json")))
        cfg = compose_cfg(tmp_path / "run", ["data=ssc", f"data.root={root}", "cache=disk",
                                              f"cache.root={cache_root}", "data.batch_size=2", *overrides])
        instantiate(cfg.data, _convert_="all").setup("fit")
        return set(map(str, cache_root.rglob("meta.json"))) - before

    base = entries()
    assert len(base) == 3  # train, val, test
    assert entries() == set(), "the same transform reuses its entries"
    for knobs in SSC_KNOBS:
        assert len(entries(*knobs)) == 3, f"{knobs} must give new cache entries"


def test_gpu_cache_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match=r"cache=gpu needs CUDA.*cache.device=cpu"):
        GpuCache()


@pytest.mark.gpu
def test_gpu_cache_on_cuda_serves_the_same_frames_from_the_device() -> None:
    data = source()
    ref_frames, ref_targets = all_items(data)
    cache = GpuCache(device="cuda")
    wrapped = cache.wrap(data, "s/train/gpu")
    assert isinstance(wrapped, DeviceFrames) and wrapped.values.is_cuda
    frames, targets = wrapped.gather(torch.arange(len(data), device="cuda"))
    assert frames.is_cuda
    np.testing.assert_array_equal(frames.cpu().numpy(), ref_frames)
    assert targets.cpu().tolist() == ref_targets
    batches = list(cache.loader(wrapped, batch_size=5, shuffle=True, drop_last=True))
    assert len(batches) == len(data) // 5 and all(b[0].is_cuda for b in batches)


def test_augmentations_by_hand() -> None:
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3) + 1
    torch.manual_seed(0)
    shifted = TimeShift(max_shift=2)(x)
    for b in range(2):  # each sample is its own frames moved in time, empty frames filled in
        rows = [r for r in range(5) if shifted[b, r].any()]
        src = [int((shifted[b, r, 0] - 1 - 15 * b) // 3) for r in rows]
        assert all(s - r == src[0] - rows[0] for s, r in zip(src, rows, strict=True))
    assert torch.equal(ChannelDrop(p=0.0)(x), x)
    assert not ChannelDrop(p=1.0)(x).any()
    assert torch.equal(RandomFlip(dims=(-1,), p=1.0)(x), x.flip(-1))
    with pytest.raises(ConfigError, match="RandomFlip.dims"):
        RandomFlip(dims=(1,))


def test_augmentation_applies_to_training_batches_only(tmp_path: Path) -> None:
    from types import SimpleNamespace

    root = make_ssc(tmp_path / "ssc", train=2, valid=1, test=1)
    drop_all = "data.augment=[{_target_: brainlab.data.augment.ChannelDrop, p: 1.0}]"
    cfg = compose_cfg(tmp_path / "run", ["data=ssc", f"data.root={root}", "data.batch_size=2", drop_all])
    dm = instantiate(cfg.data, _convert_="all")
    batch = (torch.ones(2, 4, 1, 3), torch.zeros(2, dtype=torch.long))
    dm.trainer = SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], batch[0])
    dm.trainer = SimpleNamespace(training=True)
    assert not dm.on_after_batch_transfer(batch, 0)[0].any()


@pytest.mark.parametrize("name", ["shd", "ssc", "nmnist", "dvs_gesture"])
def test_every_strategy_serves_each_real_reader_exactly_as_none(name: str, tmp_path: Path) -> None:
    """Through each DataModule on its tonic-format fixture: val/test frames and targets equal `none`'s."""
    from helpers.events import make_dvs_gesture, make_nmnist, make_shd

    makers = {"shd": make_shd, "ssc": make_ssc, "nmnist": make_nmnist, "dvs_gesture": make_dvs_gesture}
    small = {"dvs_gesture": ["data.spatial_factor=0.25", "data.frame_size=32"]}
    root = makers[name](tmp_path / name)

    def served(*cache: str) -> list[np.ndarray]:
        cfg = compose_cfg(tmp_path / "run", [f"data={name}", f"data.root={root}", "data.num_classes=4",
                                              "data.batch_size=3", *small.get(name, []), *cache])
        dm = instantiate(cfg.data, _convert_="all")
        dm.setup("fit")
        out = []
        for split in ("val", "test"):
            batches = list(dm.loader(split, shuffle=False))
            out += [torch.cat([b[0] for b in batches]).cpu().numpy(), torch.cat([b[1] for b in batches]).numpy()]
        return out

    want = served("cache=none")
    assert want[0].sum() > 0
    for cache in (["cache=memory"], ["cache=disk", f"cache.root={tmp_path / 'c'}"], ["cache=gpu", "cache.device=cpu"]):
        for got, ref in zip(served(*cache), want, strict=True):
            np.testing.assert_array_equal(got, ref)


def test_disk_key_sees_a_raw_file_edited_in_place_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    import os

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.bin").write_bytes(b"\x00" * 4096)
    (raw / "b.bin").write_bytes(b"\x01" * 100)
    cache = DiskCache(tmp_path / "cache")
    files = sorted(raw.iterdir())
    first = cache.fingerprint(files)
    assert first and cache.fingerprint(files) == first, "unchanged files: the same fingerprint"
    st = (raw / "a.bin").stat()
    (raw / "a.bin").write_bytes(b"\x00" * 4095 + b"\x02")  # same size
    os.utime(raw / "a.bin", ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime, as `cp -p` leaves it
    assert (raw / "a.bin").stat().st_mtime_ns == st.st_mtime_ns
    assert cache.fingerprint(files) != first
    assert DiskCache(tmp_path / "cache").fingerprint([]) == ""


def test_stale_temp_folders_and_old_corrupt_entries_are_tidied_with_a_log_line(tmp_path: Path, caplog) -> None:
    import socket
    import subprocess

    folder = tmp_path / "s/train"
    folder.mkdir(parents=True)
    proc = subprocess.Popen(["true"])
    proc.wait()
    host = socket.gethostname().replace("-", "_")
    stale = folder / f".k.tmp-{host}-{proc.pid}-abcd1234"
    live = folder / f".k.tmp-{host}-{__import__('os').getpid()}-abcd1234"  # this process: still writing
    for path in (stale, live):
        path.mkdir()
        (path / "values.npy").write_bytes(b"x" * 1000)
    for i in range(5):
        (folder / f"k.corrupt-2026010{i}T000000-abcdef").mkdir()
    with caplog.at_level("WARNING", logger="brainlab.data.caching"):
        DiskCache(tmp_path).wrap(source(), "s/train/k")
    names = sorted(p.name for p in folder.iterdir())
    assert stale.name not in names and live.name in names
    assert [n for n in names if ".corrupt-" in n] == [f"k.corrupt-2026010{i}T000000-abcdef" for i in (2, 3, 4)]
    assert "k" in names
    assert any("did not finish" in r.message for r in caplog.records)
    assert sum("old corrupt entry" in r.message for r in caplog.records) == 2
