"""The base every brainlab DataModule derives from: the declared interface and the shared loaders.

`DataModule` provides `brainlab.core.datamodule.DataModuleInfo` with its documented defaults (`is_full_dataset`
False until a dataset proves it holds the complete published data) and the loader settings
(`brainlab.data.loaders`). `SplitDataModule` adds train/val/test loaders over `self.datasets`; `CachedDataModule`
puts each split behind a cache strategy (`cache=none|disk|memory|gpu`), keyed by the data, the split and the
transform. Dataset files only say what is particular to their dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from brainlab.data.caching import CacheStrategy, NoCache, transform_key
from brainlab.data.loaders import LoaderSettings


class DataModule(pl.LightningDataModule):
    """Base of every brainlab DataModule (see `brainlab.core.datamodule.DataModuleInfo`)."""

    #: names the dataset in messages and cache keys
    dataset_name = "data"

    def __init__(self, batch_size: int | None, num_workers: int = 0, pin_memory: bool = False,
                 drop_last: bool = False) -> None:
        super().__init__()
        self.loader_settings = LoaderSettings(batch_size, num_workers, pin_memory, drop_last)

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

    def dataloader(self, dataset: Dataset, shuffle: bool = False, **kwargs: Any) -> DataLoader:
        """A DataLoader over `dataset` with this module's loader settings."""
        return self.loader_settings.dataloader(dataset, shuffle=shuffle, **kwargs)


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

    def cache_splits(self, splits: Mapping[str, Dataset], transform: Any) -> None:
        """Wrap each split in the cache, keyed by the data, the split, `transform` and the split hash."""
        for split, dataset in splits.items():
            key = transform_key(self.dataset_id(), split, transform, self.split_hash)
            self.datasets[split] = self.cache.wrap(dataset, key=f"{self.dataset_name}/{split}/{key}")

    def loader(self, split: str, shuffle: bool) -> Any:
        return self.cache.loader(self.datasets[split], **self.loader_settings.options(shuffle))
