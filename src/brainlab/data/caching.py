"""Cache strategies (`cache=none|disk|memory|gpu`): one interface, a wrapper around a transformed dataset.

A strategy gets the dataset whose items are already transformed (frames, target) and a key that names the
dataset, split and transform parameters; it returns a dataset serving the same items, however it stores them.
`loader(...)` is the hook the DataModule builds its loaders with (the gpu strategy serves whole batches from
the device instead of a DataLoader).

Why not tonic's `DiskCachedDataset`: it keys entries by index only (a changed transform serves stale frames),
writes one HDF5 file per sample in place (a crash leaves a truncated file that is served later) and reads
~0.85 ms per SSC-shaped sample here. The `disk` strategy below keys by the transform's parameters, writes a
packed sparse store atomically (build in a temp dir, one `rename`), checks it on load (sizes, offsets, crc32),
moves a corrupt store aside and rebuilds it, and serves memory-mapped batches many times faster.

Every strategy serves its batches in the order of one `brainlab.data.sampler.SeededSampler` (keyed by seed and
epoch), and neither building nor reading a cache touches the global RNG: the same seed gives the same numbers with
any strategy. Persistent entries (`disk`) are also keyed by a content fingerprint of the raw files (`fingerprint`,
memoised per file by its size, mtime, ctime and inode, so an in-place edit that keeps size and mtime is still
seen); temp folders of dead writers are removed and only the last few corrupt entries kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
import warnings
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.loaders import build_loader
from brainlab.data.sampler import SeededSampler
from brainlab.data.samples import BadItem, Guarded

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARRAYS = ("indices", "values", "offsets", "targets")
#: corrupt entries kept aside per entry (older ones are removed)
KEEP_CORRUPT = 3
#: a temp folder of a writer on another host (whose process cannot be checked) is stale after this long
STALE_TEMP_S = 24 * 3600


def transform_key(*parts: object) -> str:
    """A short stable hash of the parts' reprs (tonic transforms are dataclasses: repr = their params)."""
    text = "|".join(repr(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CacheStrategy(ABC):
    """Wraps a transformed dataset; `wrap` returns a dataset with the same items."""

    name: str = "abstract"
    #: whether entries outlive the run (then keys include the raw files' content fingerprint)
    persistent: bool = False
    #: `data.on_bad_sample` (set by the datamodule): a bad sample met while building stops the build (`error`) or
    #: is left out of the store and listed in its `dropped` (`skip`)
    on_bad_sample: str = "error"

    @abstractmethod
    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        """Serve `dataset`'s items; `key` identifies dataset, split and transform parameters."""

    def fingerprint(self, files: Sequence[Path]) -> str:
        """A fingerprint of the raw files' contents for keys of persistent entries ("" when not persistent)."""
        return ""

    def loader(
        self, dataset: Dataset, *, batch_size: int, shuffle: bool, drop_last: bool = False,
        num_workers: int = 0, pin_memory: bool = False, sampler: SeededSampler | None = None,
    ) -> Any:
        """An iterable of `(frames, targets)` batches over a dataset returned by `wrap`, in `sampler`'s order
        (a `SeededSampler` over the run's seed when None)."""
        packed = isinstance(dataset, PackedFrames)
        return build_loader(dataset, sampler, shuffle=shuffle, batch_size=batch_size, drop_last=drop_last,
                            num_workers=num_workers, pin_memory=pin_memory,
                            collate_fn=collate_packed if packed else None, per_sample_seeds=not packed)


class NoCache(CacheStrategy):
    """`cache=none`: transform in the loader workers every epoch."""

    name = "none"

    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        return dataset


# --- the packed sparse store -----------------------------------------------------------------------------
class PackedBatch(list):
    """A batch from `PackedFrames.__getitems__`: a list of (frames, target) like any fetched batch, and the
    already-stacked tensors, which `collate_packed` hands on without copying again."""

    def __init__(self, frames: torch.Tensor, targets: torch.Tensor) -> None:
        super().__init__(zip(frames, targets, strict=True))
        self.frames, self.targets = frames, targets


def collate_packed(batch: Any) -> Any:
    """DataLoader collate for packed stores: pass pre-stacked batches through, else torch's default."""
    if isinstance(batch, PackedBatch):
        return batch.frames, batch.targets
    return default_collate(batch)


class PackedFrames(Dataset):
    """Transformed samples as one sparse store: the non-zero flat positions and values of every sample.

    `offsets[i]:offsets[i+1]` slices sample i's entries of `indices` (flat positions in its frames) and
    `values`. Arrays may be memory-mapped (`disk`) or in RAM (`memory`). Items equal the source's:
    `(float32 frames of frame_shape, int target)`; `__getitems__` densifies a whole batch at once.
    """

    def __init__(self, arrays: dict[str, np.ndarray], frame_shape: Sequence[int],
                 dropped: Sequence[str] = ()) -> None:
        #: the bad samples left out when the store was built (one line each, `brainlab.data.samples`)
        self.dropped = list(dropped)
        self.indices, self.values = arrays["indices"], arrays["values"]
        self.offsets, self.targets = arrays["offsets"], arrays["targets"]
        self.frame_shape = tuple(int(d) for d in frame_shape)
        self.frame_size = int(np.prod(self.frame_shape))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        frames, targets = self.dense([index])
        return frames[0], int(targets[0])

    def __getitems__(self, indices: Sequence[int]) -> PackedBatch:
        """A whole batch densified at once (DataLoader calls this instead of one item at a time)."""
        frames, targets = self.dense(indices)
        return PackedBatch(torch.from_numpy(frames), torch.from_numpy(targets))

    def dense(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Frames `(len(indices), *frame_shape)` float32 and targets of the samples `indices`."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} samples")
        idx = idx % max(len(self), 1)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        lens = ends - starts
        rows = np.repeat(np.arange(idx.size), lens)
        # positions of every entry of the batch in the packed arrays: a concatenation of ranges
        pos = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
        out = np.zeros((idx.size, self.frame_size), dtype=np.float32)
        out[rows, self.indices[pos]] = self.values[pos]
        return out.reshape(idx.size, *self.frame_shape), np.asarray(self.targets[idx])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.indices, self.values, self.offsets, self.targets))


def value_dtype(values: np.ndarray) -> np.dtype:
    """The smallest dtype that stores `values` exactly (spike counts fit in uint8/uint16)."""
    if values.size == 0:
        return np.dtype(np.uint8)
    if np.all(values >= 0) and np.all(values == np.round(values)):
        top = values.max()
        if top <= np.iinfo(np.uint8).max:
            return np.dtype(np.uint8)
        if top <= np.iinfo(np.uint16).max:
            return np.dtype(np.uint16)
    return np.dtype(np.float32)


def _as_is(item: Any) -> Any:
    return item


def pack(dataset: Dataset, num_workers: int = 0, desc: str = "", on_bad_sample: str = "error",
         dropped: list[str] | None = None) -> tuple[dict[str, np.ndarray], tuple]:
    """Transform every sample once (in `num_workers` processes) and pack the non-zeros.

    Every sample is checked as it is read (`brainlab.data.samples`): a bad one stops the build with its line
    (`on_bad_sample="error"`) or is left out and its line appended to `dropped` (`"skip"`).
    The loader's seeds come from a private generator: building a cache never draws from the global RNG."""
    loader = DataLoader(Guarded(dataset), batch_size=None, shuffle=False, num_workers=num_workers,
                        collate_fn=_as_is, generator=torch.Generator().manual_seed(0))
    idx_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    counts: list[int] = []
    targets: list[int] = []
    frame_shape: tuple | None = None
    start = time.perf_counter()
    for item in loader:
        if isinstance(item, BadItem):
            if on_bad_sample != "skip":
                raise item.error
            log.warning("skipped a bad sample: %s", item.error)
            if dropped is not None:
                dropped.append(str(item.error))
            continue
        frames, target = item
        frames = np.asarray(frames)
        if frame_shape is None:
            frame_shape = frames.shape
        elif frames.shape != frame_shape:
            raise DataError(f"cache {desc}: samples have different frame shapes {frame_shape} and "
                            f"{frames.shape}; fix the transform (data.n_time_bins pads/crops time)")
        flat = frames.reshape(-1)
        nz = np.flatnonzero(flat)
        idx_parts.append(nz)
        val_parts.append(flat[nz])
        counts.append(nz.size)
        targets.append(int(np.asarray(target)))
    if frame_shape is None:
        raise DataError(f"cache {desc}: the dataset is empty")
    size = int(np.prod(frame_shape))
    index_dtype = np.int32 if size < np.iinfo(np.int32).max else np.int64
    values = np.concatenate(val_parts) if val_parts else np.zeros(0, np.float32)
    arrays = {
        "indices": np.concatenate(idx_parts).astype(index_dtype),
        "values": values.astype(value_dtype(values)),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "targets": np.asarray(targets, dtype=np.int64),
    }
    log.info("cached %s: %d samples in %.1f s (%.1f MB packed)", desc, len(targets),
             time.perf_counter() - start, sum(a.nbytes for a in arrays.values()) / 1e6)
    return arrays, frame_shape


class MemoryCache(CacheStrategy):
    """`cache=memory`: transform once, keep the packed set in RAM for the whole run."""

    name = "memory"

    def __init__(self, build_workers: int = 0) -> None:
        self.build_workers = build_workers

    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        dropped: list[str] = []
        arrays, shape = pack(dataset, self.build_workers, desc=key, on_bad_sample=self.on_bad_sample,
                             dropped=dropped)
        return PackedFrames(arrays, shape, dropped)


# --- disk ---------------------------------------------------------------------------------------------
def crc32_file(path: Path, chunk: int = 1 << 24) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            crc = zlib.crc32(block, crc)
    return crc


class CorruptEntry(Exception):
    """A store on disk does not match its metadata."""


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """A fast hash of a file's contents (blake2b, 128 bits)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def temp_name(name: str) -> str:
    """A private temp folder name beside entry `name`: host and pid say whose it is."""
    host = socket.gethostname().replace("-", "_") or "host"
    return f".{name}.tmp-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def stale_temp(path: Path, now: float) -> bool:
    """A temp folder whose writer is gone: its process died (this host), or it is older than STALE_TEMP_S."""
    try:
        _, tail = path.name.rsplit(".tmp-", 1)
        host, pid, _ = tail.rsplit("-", 2)
        age = now - path.stat().st_mtime
    except (ValueError, OSError):
        return False
    if host == (socket.gethostname().replace("-", "_") or "host") and pid.isdigit():
        return not pid_alive(int(pid))
    return age > STALE_TEMP_S


class DiskCache(CacheStrategy):
    """`cache=disk`: a packed, memory-mapped store per (dataset, split, transform) key under `root`.

    Reused across epochs and runs. Writes are atomic (a private temp dir renamed into place); runs building
    the same entry at once each build privately and the first rename wins. An entry failing its checks is
    reported, moved aside (`<entry>.corrupt-<time>`, never overwritten) and rebuilt.
    """

    name = "disk"
    persistent = True

    def __init__(self, root: str | os.PathLike, build_workers: int = 0, verify: str = "crc") -> None:
        if verify not in ("crc", "size"):
            raise ConfigError(f"cache.verify={verify!r} is not supported; choose crc or size")
        self.root = Path(root).expanduser()
        self.build_workers = build_workers
        self.verify = verify

    def entry(self, key: str) -> Path:
        return self.root / key

    # --- the raw files' content fingerprint ----------------------------------------------------------------
    def fingerprint(self, files: Sequence[Path]) -> str:
        """A hash of every raw file's contents (not of its size and mtime, which `cp -p` and `rsync -a` keep).

        Each file's digest is memoised in `<root>/.fingerprints.json` under its path, size, mtime, ctime and inode:
        an unchanged file is not read again, and any write (which changes the ctime) rehashes it."""
        memo_file = self.root / ".fingerprints.json"
        try:
            memo = json.loads(memo_file.read_text())
        except (OSError, ValueError):
            memo = {}
        root = self.root.resolve()
        parts, changed = [], False
        for file in sorted(Path(f).resolve() for f in files):
            if file.is_relative_to(root):  # the cache's own files are not raw data
                continue
            st = file.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
            known = memo.get(str(file))
            if not known or known[0] != stamp:
                known = [stamp, file_digest(file)]
                memo[str(file)] = known
                changed = True
            parts.append(f"{file}:{known[1]}")
        if changed:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = memo_file.with_name(f"{temp_name(memo_file.name)}.json")
            try:
                tmp.write_text(json.dumps(memo))
                os.replace(tmp, memo_file)
            except OSError as exc:
                log.warning("could not save the raw-file fingerprints in %s: %s", memo_file, exc)
                tmp.unlink(missing_ok=True)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else ""

    # --- housekeeping ------------------------------------------------------------------------------------
    def tidy(self, folder: Path) -> None:
        """Remove temp folders of dead writers and all but the last KEEP_CORRUPT corrupt entries, saying so."""
        if not folder.is_dir():
            return
        now = time.time()
        corrupt: dict[str, list[Path]] = {}
        for path in folder.iterdir():
            if path.name.startswith(".") and ".tmp-" in path.name and stale_temp(path, now):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                log.warning("cache: removed %s, the temp folder of a cache build that did not finish", path)
            elif ".corrupt-" in path.name:
                corrupt.setdefault(path.name.split(".corrupt-")[0], []).append(path)
        for aside in corrupt.values():
            for old in sorted(aside, key=lambda p: p.name)[:-KEEP_CORRUPT]:
                shutil.rmtree(old, ignore_errors=True)
                log.warning("cache: removed the old corrupt entry %s (the last %d are kept)", old, KEEP_CORRUPT)

    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        path = self.entry(key)
        self.tidy(path.parent)
        if path.exists():
            try:
                return self.load(path)
            except CorruptEntry as exc:
                aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-"
                                       f"{uuid.uuid4().hex[:6]}")
                warnings.warn(f"cache entry {path} is corrupt ({exc}): moved to {aside.name}, rebuilding",
                              stacklevel=2)
                try:
                    os.rename(path, aside)
                except OSError:
                    if path.exists():  # another run may have moved it (and rebuilt) already
                        return self.wrap(dataset, key)
        self.build(dataset, key, path)
        return self.load(path)

    def build(self, dataset: Dataset, key: str, path: Path) -> None:
        """Write the entry into a private temp dir, then rename it into place (atomic)."""
        dropped: list[str] = []
        arrays, shape = pack(dataset, self.build_workers, desc=key, on_bad_sample=self.on_bad_sample,
                             dropped=dropped)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(temp_name(path.name))
        tmp.mkdir()
        try:
            meta: dict[str, Any] = {"format": FORMAT_VERSION, "key": key, "frame_shape": list(shape),
                                    "n": int(arrays["targets"].size), "files": {}, "dropped": dropped}
            for name, array in arrays.items():
                file = tmp / f"{name}.npy"
                with open(file, "wb") as fh:
                    np.save(fh, array)
                    fh.flush()
                    os.fsync(fh.fileno())
                meta["files"][name] = {"bytes": file.stat().st_size, "crc32": crc32_file(file),
                                       "shape": list(array.shape), "dtype": array.dtype.str}
            with open(tmp / "meta.json", "w") as fh:
                json.dump(meta, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.rename(tmp, path)
            except OSError:
                if not path.exists():
                    raise
                log.info("cache entry %s was built by another run meanwhile: using that one", path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def load(self, path: Path) -> PackedFrames:
        """Open an entry memory-mapped after checking it against its metadata."""
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise CorruptEntry(f"meta.json unreadable: {exc}") from None
        if meta.get("format") != FORMAT_VERSION or set(meta.get("files", {})) != set(ARRAYS):
            raise CorruptEntry("unknown format or missing arrays")
        arrays = {}
        for name, info in meta["files"].items():
            file = path / f"{name}.npy"
            if not file.is_file() or file.stat().st_size != info["bytes"]:
                raise CorruptEntry(f"{file.name} is missing or has the wrong size")
            if self.verify == "crc" and crc32_file(file) != info["crc32"]:
                raise CorruptEntry(f"{file.name} fails its crc32 check")
            try:
                array = np.load(file, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CorruptEntry(f"{file.name}: {exc}") from None
            if list(array.shape) != info["shape"] or array.dtype.str != info["dtype"]:
                raise CorruptEntry(f"{file.name} does not match meta.json")
            arrays[name] = array
        offsets = np.asarray(arrays["offsets"])
        if offsets.size != meta["n"] + 1 or offsets[0] != 0 or offsets[-1] != arrays["indices"].size \
                or np.any(np.diff(offsets) < 0):
            raise CorruptEntry("offsets are inconsistent")
        return PackedFrames(arrays, meta["frame_shape"], meta.get("dropped", []))


# --- gpu ------------------------------------------------------------------------------------------------
class DeviceFrames(Dataset):
    """A packed store resident on a device; `gather(idx)` densifies a batch there (no host round-trip).

    On the device: flat positions (int32 while a sample's frames have < 2**31 positions), values in their
    compact dtype (uint8 for spike counts), offsets and targets. A host copy of the offsets (8 bytes per
    sample) sizes each batch without reading anything back from the device.
    """

    def __init__(self, packed: PackedFrames, device: torch.device) -> None:
        self.device = torch.device(device)
        self.dropped = list(packed.dropped)
        self.frame_shape = packed.frame_shape
        self.frame_size = packed.frame_size
        self.host_offsets = torch.from_numpy(np.asarray(packed.offsets, dtype=np.int64).copy())
        self.indices = torch.from_numpy(np.ascontiguousarray(packed.indices)).to(self.device)
        self.values = torch.from_numpy(np.ascontiguousarray(packed.values)).to(self.device)
        self.offsets = self.host_offsets.to(self.device)
        self.targets = torch.from_numpy(np.asarray(packed.targets, dtype=np.int64).copy()).to(self.device)

    def __len__(self) -> int:
        return int(self.targets.numel())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames, targets = self.gather(torch.tensor([index]))
        return frames[0], int(targets[0])

    @property
    def nbytes(self) -> int:
        """Bytes held on the device."""
        return sum(t.numel() * t.element_size() for t in (self.indices, self.values, self.offsets, self.targets))

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense float32 frames `(len(idx), *frame_shape)` and targets, built on the device.

        `idx` may live on the host (sizes come from the host offsets, no sync) or on the device.
        """
        host_idx = idx.to("cpu", torch.int64)
        if host_idx.numel() and (host_idx.min() < 0 or host_idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} samples")
        total = int((self.host_offsets[host_idx + 1] - self.host_offsets[host_idx]).sum())
        idx = host_idx.to(self.device, non_blocking=True)
        starts = self.offsets[idx]
        lens = self.offsets[idx + 1] - starts
        rows = torch.repeat_interleave(torch.arange(idx.numel(), device=self.device), lens, output_size=total)
        first = torch.cumsum(lens, 0) - lens  # where each sample's entries start in the gathered list
        pos = torch.arange(total, device=self.device) - first[rows] + starts[rows]
        flat = rows * self.frame_size + self.indices[pos].to(torch.int64)
        out = torch.zeros(idx.numel() * self.frame_size, dtype=torch.float32, device=self.device)
        out.index_put_((flat,), self.values[pos].to(torch.float32))
        return out.view(idx.numel(), *self.frame_shape), self.targets[idx]


class DeviceBatches:
    """An epoch of batches gathered on the device, in the order of `sampler` (the same `SeededSampler` as every
    other strategy's: keyed by seed and epoch, sharded per rank under torch.distributed). `sampler` is public so
    that Lightning sets its epoch."""

    def __init__(self, frames: DeviceFrames, batch_size: int, shuffle: bool, drop_last: bool,
                 sampler: SeededSampler | None = None) -> None:
        self.frames, self.batch_size, self.shuffle, self.drop_last = frames, batch_size, shuffle, drop_last
        self.sampler = sampler if sampler is not None else SeededSampler(len(frames), shuffle, drop_last=drop_last)
        self.batch_sampler = None  # what Lightning reads of a loader: the order is `sampler`'s

    def state_dict(self) -> dict[str, Any]:
        """Resumable for Lightning: the order is the sampler's (the resume-state callback sets the position)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load (see `state_dict`)."""

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.tensor(list(self.sampler), dtype=torch.int64)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield self.frames.gather(order[start:start + self.batch_size])


class GpuCache(CacheStrategy):
    """`cache=gpu`: the packed set resident on the device; batches densified there, no workers.

    Needs CUDA; `cache.device=cpu` runs the same path on the CPU (for tests). With `disk_root` set, the
    packed store is read from / written to the disk cache first, so later runs skip the transform.
    """

    name = "gpu"

    def __init__(self, device: str = "cuda", build_workers: int = 0, disk_root: str | None = None) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "cache=gpu needs CUDA, but torch.cuda.is_available() is False: use cache=memory "
                "(or cache.device=cpu to run the gpu-cache path on the CPU for testing)"
            )
        self.build_workers = build_workers
        self.disk = DiskCache(disk_root, build_workers) if disk_root else None
        self.persistent = self.disk is not None

    def fingerprint(self, files: Sequence[Path]) -> str:
        return self.disk.fingerprint(files) if self.disk is not None else ""

    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        store = self.disk if self.disk is not None else MemoryCache(self.build_workers)
        store.on_bad_sample = self.on_bad_sample
        packed = store.wrap(dataset, key)
        return DeviceFrames(packed, self.device)  # type: ignore[arg-type]

    def loader(
        self, dataset: Dataset, *, batch_size: int, shuffle: bool, drop_last: bool = False,
        num_workers: int = 0, pin_memory: bool = False, sampler: SeededSampler | None = None,
    ) -> Any:
        if not isinstance(dataset, DeviceFrames):
            return super().loader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                                  num_workers=num_workers, pin_memory=pin_memory, sampler=sampler)
        return DeviceBatches(dataset, batch_size, shuffle, drop_last, sampler)
