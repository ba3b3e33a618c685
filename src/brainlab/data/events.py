"""The shared event DataModule: tonic dataset -> tonic transforms -> fixed time bins -> cache -> batches.

Real datasets (SHD, SSC, N-MNIST, DVS-Gesture) and the synthetic set differ only in `make_dataset`
(their tonic class), sensor size and default transform (from config). Batches are
`(frames: float32 (batch, time, *input_shape), targets: int64 (batch,))`.
"""

from __future__ import annotations

import hashlib
import logging
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset, Subset

from brainlab.data.augment import Augment
from brainlab.data.caching import CacheStrategy, NoCache, transform_key
from brainlab.errors import ConfigError, DataError
from brainlab.nets.snn import positive_int

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixedTimeBins:
    """Pad with empty frames or crop to exactly `n_time_bins` frames and cast to float32.

    A sample's frames then never depend on which samples share its batch.
    """

    n_time_bins: int

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        t = frames.shape[0]
        if t > self.n_time_bins:
            frames = frames[: self.n_time_bins]
        elif t < self.n_time_bins:
            pad = np.zeros((self.n_time_bins - t, *frames.shape[1:]), dtype=frames.dtype)
            frames = np.concatenate([frames, pad], axis=0)
        return frames.astype(np.float32, copy=False)


class Chain:
    """Apply the configured transform, then the base's final steps (picklable for workers)."""

    def __init__(self, *steps: Callable | None) -> None:
        self.steps = [s for s in steps if s is not None]

    def __call__(self, sample: Any) -> Any:
        for step in self.steps:
            sample = step(sample)
        return sample

    def __repr__(self) -> str:
        return f"Chain({', '.join(repr(s) for s in self.steps)})"


class EventDataModule(pl.LightningDataModule):
    """Base for event datasets: splits, transforms, caching and loaders in one place."""

    dataset_name = "events"
    #: True when the dataset ships its own validation split (SSC); otherwise one is taken from train.
    has_val_split = False

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        n_time_bins: int,
        transform: Callable | None = None,
        cache: CacheStrategy | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        drop_last: bool = False,
        augment: Sequence[Callable] | None = None,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.n_time_bins = positive_int("data.n_time_bins", n_time_bins)
        self.batch_size = positive_int("data.batch_size", batch_size)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction!r}")
        self.transform = Chain(transform, FixedTimeBins(self.n_time_bins))
        self.cache = cache if cache is not None else NoCache()
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.drop_last = drop_last
        self.augment = Augment(list(augment or []))
        self.datasets: dict[str, Dataset] = {}
        self.split_hash: str | None = None

    # --- what a dataset provides -------------------------------------------------------------------
    @abstractmethod
    def make_dataset(self, split: str, transform: Callable) -> Dataset:
        """The tonic-style dataset of `split` ("train", "test", and "val" if `has_val_split`)."""

    def dataset_id(self) -> str:
        """Identifies the raw data (root, version) in cache keys."""
        return self.dataset_name

    @property
    def is_full_dataset(self) -> bool:
        """False when the files found are not the complete published dataset (fixtures, partial copies)."""
        return True

    # --- LightningDataModule ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        train = self.make_dataset("train", self.transform)
        if self.has_val_split:
            val = self.make_dataset("val", self.transform)
        else:
            train, val = self._split_train(train)
        test = self.make_dataset("test", self.transform)
        for split, dataset in (("train", train), ("val", val), ("test", test)):
            key = transform_key(self.dataset_id(), split, self.transform, self.split_hash)
            self.datasets[split] = self.cache.wrap(dataset, key=f"{self.dataset_name}/{split}/{key}")
        self._check_sample_shape(self.datasets["train"])

    def _split_train(self, train: Dataset) -> tuple[Subset, Subset]:
        """A seeded validation split from the training set; its hash is logged and kept."""
        n = len(train)  # type: ignore[arg-type]
        n_val = max(1, int(round(n * self.val_fraction)))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
        self.split_hash = hashlib.sha256(np.asarray(val_idx, dtype=np.int64).tobytes()).hexdigest()[:12]
        log.info("validation split: %d of %d training samples (seed %d, hash %s)",
                 n_val, n, self.split_seed, self.split_hash)
        return Subset(train, train_idx), Subset(train, val_idx)

    def _check_sample_shape(self, dataset: Dataset) -> None:
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise DataError(f"{self.dataset_name}: the training split is empty")
        frames, _ = dataset[0]
        expected = (self.n_time_bins, *self.input_shape)
        if tuple(np.shape(frames)) != expected:
            raise ConfigError(
                f"data.input_shape={list(self.input_shape)} does not match the frames the transform makes "
                f"({list(np.shape(frames)[1:])}): set data.input_shape to that"
            )

    def _loader(self, split: str, shuffle: bool) -> Any:
        """The cache strategy builds the loader (a DataLoader, or device-side batches for `cache=gpu`)."""
        return self.cache.loader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=self.drop_last and shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Train-time augmentation of the (cached) frames, on the device; eval batches pass unchanged."""
        trainer = self.trainer
        if trainer is None or not trainer.training or not self.augment.ops:
            return batch
        frames, targets = batch
        return self.augment(frames), targets

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", shuffle=False)
