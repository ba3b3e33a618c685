"""The base every brainlab DataModule derives from: the declared interface and the shared loaders.

`DataModule` provides `brainlab.core.datamodule.DataModuleInfo` with its documented defaults (`is_full_dataset`
False until a dataset proves it holds the complete published data) and the loader settings
(`brainlab.data.loaders`). `SplitDataModule` adds train/val/test loaders over `self.datasets`; `CachedDataModule`
puts each split behind a cache strategy (`cache=none|disk|memory|gpu`), keyed by the data, the split and the
transform. Dataset files only say what is particular to their dataset.

Every loader draws its order from a `brainlab.data.sampler.SeededSampler` keyed by (seed, epoch), whatever the
cache; `resume_training_at(epoch, batches)` (the `brainlab.core.resume.ResumableData` interface, called by the
resume-state callback) makes the next training loader start after the batches a resumed run already did.

`missing_data` is the one message of every dataset whose files are not there: "not found" only when the folder
does not exist; a folder that exists is "empty" or "incomplete", with the files expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, Sampler

from brainlab.core.errors import DataError
from brainlab.data.caching import CacheStrategy, NoCache, transform_key
from brainlab.data.loaders import LoaderSettings
from brainlab.data.sampler import SeededSampler


def holds_files(folder: Path) -> bool:
    """Whether any file lies under `folder` (at any depth; stops at the first)."""
    return any(files for _, _, files in os.walk(folder))


def missing_data(dataset: str, folder: Path, missing: Sequence[str | Path], fix: str, root: Path | None = None,
                 not_found: str | None = None) -> DataError:
    """The one line for a dataset whose files `missing` (under `folder`) are not there, saying which case it is.

    `folder` holds the dataset's files; `root` is the folder the user named (`data.root`, default `folder`), of
    which `folder` may be a part. The folder exists but holds no file (or `folder` is absent and `root` holds no
    file): "<folder> is empty". It holds files, just not these: "<folder> is incomplete". Neither exists (or
    `folder` is absent from a `root` that holds other things): "not found", in the dataset's own words
    (`not_found`) where it has them. `fix` says where the files go or how to get them.
    """
    root = folder if root is None else root
    names = ", ".join(str(m) for m in missing)
    absent = not folder.exists()
    if (not absent and not holds_files(folder)) or (absent and root.is_dir() and not holds_files(root)):
        empty = folder if folder.is_dir() else root
        return DataError(f"{dataset}: {empty} is empty (the folder exists but holds no files; expected "
                         f"{names}): {fix}")
    if folder.is_dir():
        return DataError(f"{dataset}: {folder} is incomplete ({names} not found in it): {fix}")
    return DataError(not_found or f"{dataset}: {folder} not found (expected {names} there): {fix}")


class DataModule(pl.LightningDataModule):
    """Base of every brainlab DataModule (see `brainlab.core.datamodule.DataModuleInfo`)."""

    #: names the dataset in messages and cache keys
    dataset_name = "data"

    def __init__(self, batch_size: int | None, num_workers: int = 0, pin_memory: bool = False,
                 drop_last: bool = False) -> None:
        super().__init__()
        self.loader_settings = LoaderSettings(batch_size, num_workers, pin_memory, drop_last)
        self.resume_at: tuple[int, int] | None = None
        #: per split, the bad samples dropped (`data.on_bad_sample=skip`, `brainlab.data.samples`); kept in the
        #: run record
        self.bad_samples: dict[str, int] = {}

    @property
    def is_full_dataset(self) -> bool:
        """True only for the complete published dataset (fixtures, subsets and partial copies: False)."""
        return False

    # --- loader settings (read by benches and Lightning's batch-size tuner) -----------------------------
    @property
    def batch_size(self) -> int | None:
        return self.loader_settings.batch_size

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        s = self.loader_settings
        self.loader_settings = LoaderSettings(value, s.num_workers, s.pin_memory, s.drop_last)

    @property
    def num_workers(self) -> int:
        return self.loader_settings.num_workers

    @property
    def pin_memory(self) -> bool:
        return self.loader_settings.pin_memory

    @property
    def drop_last(self) -> bool:
        return self.loader_settings.drop_last

    # --- order and exact resume ------------------------------------------------------------------------
    def resume_training_at(self, epoch: int, batches: int) -> None:
        """The next training (shuffled) loader starts epoch `epoch` after its first `batches` batches."""
        self.resume_at = (int(epoch), int(batches))

    def sampler(self, dataset: Dataset, shuffle: bool) -> SeededSampler:
        """The seeded sampler of a loader over `dataset`; a shuffled (training) one takes a pending resume."""
        sampler = SeededSampler(len(dataset), shuffle=shuffle,  # type: ignore[arg-type]
                                drop_last=self.drop_last and shuffle)
        if shuffle and self.resume_at is not None:
            epoch, batches = self.resume_at
            self.resume_at = None
            sampler.resume(epoch, batches * (self.batch_size or 1))
        return sampler

    def dataloader(self, dataset: Dataset, shuffle: bool = False, sampler: Sampler | None = None,
                   **kwargs: Any) -> DataLoader:
        """A DataLoader over `dataset` with this module's loader settings and seeded sampler."""
        if sampler is None:
            sampler = self.sampler(dataset, shuffle)
        return self.loader_settings.dataloader(dataset, shuffle=shuffle, sampler=sampler, **kwargs)


class SplitDataModule(DataModule):
    """Train (shuffled), validation and test loaders over `self.datasets[split]`, filled by `setup`."""

    #: the key of the validation split in `self.datasets`
    val_split = "val"
    #: the collate function of the loaders (None: torch's default; set it as a staticmethod)
    collate_fn: Callable | None = None

    def __init__(self, batch_size: int | None, num_workers: int = 0, pin_memory: bool = False,
                 drop_last: bool = False) -> None:
        super().__init__(batch_size, num_workers, pin_memory, drop_last)
        self.datasets: dict[str, Any] = {}

    def loader(self, split: str, shuffle: bool) -> Any:
        """The loader of one split (override for a sampler or device-side batches)."""
        return self.dataloader(self.datasets[split], shuffle=shuffle, collate_fn=self.collate_fn)

    def train_dataloader(self) -> Any:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self.loader(self.val_split, shuffle=False)

    def test_dataloader(self) -> Any:
        return self.loader("test", shuffle=False)


class CachedDataModule(SplitDataModule):
    """Splits behind a cache strategy; the strategy also builds the loaders (DataLoaders, or device-side
    batches for `cache=gpu`)."""

    def __init__(self, cache: CacheStrategy | None = None, batch_size: int = 64, num_workers: int = 0,
                 pin_memory: bool = False, drop_last: bool = False) -> None:
        super().__init__(batch_size, num_workers, pin_memory, drop_last)
        self.cache = cache if cache is not None else NoCache()
        self.split_hash: str | None = None

    def dataset_id(self) -> str:
        """Identifies the raw data (location, version, file list) in cache keys."""
        return self.dataset_name

    def raw_files(self) -> Sequence[Path]:
        """The raw files the splits are read from (their contents are fingerprinted into persistent cache keys):
        every file under `self.root` when the module has one, none for generated data."""
        root = getattr(self, "root", None)
        if root is None or not Path(root).is_dir():
            return []
        return sorted(p for p in Path(root).rglob("*") if p.is_file())

    def cache_splits(self, splits: Mapping[str, Dataset], transform: Any) -> None:
        """Wrap each split in the cache, keyed by the data (and the raw files' contents, for a cache that
        persists), the split, `transform` and the split hash."""
        content = self.cache.fingerprint(self.raw_files()) if self.cache.persistent else ""
        for split, dataset in splits.items():
            key = transform_key(self.dataset_id(), content, split, transform, self.split_hash)
            self.datasets[split] = self.cache.wrap(dataset, key=f"{self.dataset_name}/{split}/{key}")

    def loader(self, split: str, shuffle: bool) -> Any:
        dataset = self.datasets[split]
        return self.cache.loader(dataset, sampler=self.sampler(dataset, shuffle),
                                 **self.loader_settings.options(shuffle))
