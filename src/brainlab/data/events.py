"""The shared event DataModule: tonic dataset -> tonic transforms -> fixed time bins -> cache -> batches.

Real datasets (SHD, SSC, N-MNIST, DVS-Gesture) and the synthetic set differ only in `make_dataset`
(their tonic class), sensor size and default transform (from config). Batches are
`(frames: float32 (batch, time, *input_shape), targets: int64 (batch,))`.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tonic
from torch.utils.data import Dataset, Subset

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError, DataError
from brainlab.data.augment import Augment
from brainlab.data.base import CachedDataModule
from brainlab.data.caching import CacheStrategy, NoCache
from brainlab.data.samples import FIX, BadSample, bad_sample_policy, without
from brainlab.data.splits import check_fraction, holdout, index_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixedTimeBins:
    """Pad with empty frames or crop to exactly `n_time_bins` frames and cast to float32.

    A sample's frames then never depend on which samples share its batch. `frame_shape` (optional) fixes
    the empty sample tonic's ToFrame returns in another layout (`(1, P, W, H)` zeros) to the dataset's shape.
    """

    n_time_bins: int
    frame_shape: tuple[int, ...] | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if (self.frame_shape is not None and frames.shape[1:] != self.frame_shape and frames.shape[0] == 1
                and frames.size == np.prod(self.frame_shape) and not frames.any()):
            frames = np.zeros((self.n_time_bins, *self.frame_shape), dtype=np.float32)
        t = frames.shape[0]
        if t > self.n_time_bins:
            frames = frames[: self.n_time_bins]
        elif t < self.n_time_bins:
            pad = np.zeros((self.n_time_bins - t, *frames.shape[1:]), dtype=frames.dtype)
            frames = np.concatenate([frames, pad], axis=0)
        return frames.astype(np.float32, copy=False)


class Chain:
    """Apply the configured transform, then the base's final steps (picklable for workers).

    An IndexError/ValueError inside a step (tonic's ToFrame on events outside its sensor, say) becomes one
    `DataError` line naming `name` and `hint`, not a traceback from deep in a loader worker.
    """

    def __init__(self, *steps: Callable | None, name: str = "data.transform", hint: str = "") -> None:
        self.steps = [s for s in steps if s is not None]
        self.name, self.hint = name, hint

    def __call__(self, sample: Any) -> Any:
        for step in self.steps:
            try:
                sample = step(sample)
            except (IndexError, ValueError) as exc:
                raise DataError(f"{self.name}: {type(step).__name__} failed on a sample "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                                f"{': ' + self.hint if self.hint else ''}") from None
        return sample

    def __repr__(self) -> str:
        return f"Chain({', '.join(repr(s) for s in self.steps)})"


#: tonic transforms that move no event in space (the sensor size passes through them unchanged)
SPACE_PRESERVING = ("CropTime", "Denoise", "DropEvent", "DropEventByTime", "DropPixel", "RefractoryPeriod",
                    "TimeSkew", "TimeAlignment", "Decimation", "NumpyAsType")


def transform_steps(transform: Any) -> list[tuple[str, Any]]:
    """`(config key, step)` of a tonic Compose (or a single transform)."""
    if isinstance(transform, tonic.transforms.Compose):
        return [(f"data.transform.transforms.{i}", t) for i, t in enumerate(transform.transforms)]
    return [("data.transform", transform)] if transform is not None else []


def frames_made(to_frame: tonic.transforms.ToFrame) -> int | None:
    """How many frames ToFrame makes for every sample, when its parameters fix that (else None)."""
    if to_frame.n_time_bins:
        return int(to_frame.n_time_bins)
    if not to_frame.time_window or to_frame.start_time is None or to_frame.end_time is None:
        return None
    stride = to_frame.time_window - (to_frame.overlap or 0)
    span = (to_frame.end_time - to_frame.start_time - to_frame.time_window) / stride
    n = np.ceil(span) if to_frame.include_incomplete else np.floor(span)
    return max(int(n) + 1, 1)


def check_transform(transform: Any, sensor: Sequence[int] | None, n_time_bins: int, size_keys: str = "") -> None:
    """Refuse, with the key to change, a transform that does not fit events from a `sensor` (W, H, P):
    a ToFrame sensor_size smaller than the (downsampled) events, or a frame count other than n_time_bins."""
    size = tuple(int(d) for d in sensor) if sensor is not None else None
    downsampled = ""
    for key, step in transform_steps(transform):
        kind = type(step).__name__
        if isinstance(step, tonic.transforms.Downsample):
            if step.target_size is not None and step.sensor_size is not None:
                factors = np.asarray(step.target_size, float) / np.asarray(step.sensor_size[:2], float)
            else:
                factors = np.broadcast_to(np.asarray(step.spatial_factor, float), (2,))
            if np.any(factors <= 0):
                raise ConfigError(f"{key}.spatial_factor must be > 0, got {step.spatial_factor!r}")
            downsampled = f" or change {key}.spatial_factor"
            if size is not None:  # coordinates are multiplied, then truncated to int
                size = (int((size[0] - 1) * factors[0]) + 1, int((size[1] - 1) * factors[1]) + 1, size[2])
        elif isinstance(step, tonic.transforms.ToFrame):
            given = step.sensor_size
            if size is not None and given is not None:
                need = size  # a single-polarity ToFrame refuses two-polarity events
                if any(int(g) < n for g, n in zip(given, need, strict=True)):
                    raise ConfigError(
                        f"{key}.sensor_size={[int(g) for g in given]} is smaller than the events it bins "
                        f"({list(need)} after the steps before it): set it"
                        f"{f' (via {size_keys})' if size_keys else ''} to {list(need)}{downsampled}")
                if any(int(g) > n for g, n in zip(given, need, strict=True)):
                    log.warning("%s.sensor_size=%s is larger than the events (%s): frames carry empty positions",
                                key, [int(g) for g in given], list(need))
            made = frames_made(step)
            if made is not None and made != n_time_bins:
                raise ConfigError(
                    f"data.n_time_bins={n_time_bins} does not match the {made} frames {key} makes "
                    f"(time_window={step.time_window}, start_time={step.start_time}, end_time={step.end_time}, "
                    f"include_incomplete={step.include_incomplete}): set data.n_time_bins={made}")
            size = None
        elif kind not in SPACE_PRESERVING:
            size = None  # a transform we cannot follow: stop checking sizes


class EventDataModule(CachedDataModule):
    """Base for event datasets: transforms to fixed time bins, a seeded validation split, augmentation; splits,
    caching and loaders come from `CachedDataModule`."""

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
        on_bad_sample: str = "error",
    ) -> None:
        super().__init__(cache, batch_size, num_workers, pin_memory, drop_last)
        self.on_bad_sample = bad_sample_policy(on_bad_sample)
        #: per reader (its id), the indices found bad at setup (dropped with data.on_bad_sample=skip)
        self.bad_indices: dict[int, set[int]] = {}
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.n_time_bins = positive_int("data.n_time_bins", n_time_bins)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.user_transform = transform
        self.transform = Chain(transform, FixedTimeBins(self.n_time_bins, self.input_shape),
                               hint=f"check the sensor_size / spatial_factor against {self.dataset_name}'s "
                                    "events and data.n_time_bins")
        self.split_seed = split_seed
        self.augment = Augment(list(augment or []))

    # --- what a dataset provides -------------------------------------------------------------------
    @abstractmethod
    def make_dataset(self, split: str, transform: Callable) -> Dataset:
        """The tonic-style dataset of `split` ("train", "test", and "val" if `has_val_split`)."""

    def native_sensor_size(self) -> tuple[int, int, int] | None:
        """The events' sensor `(W, H, P)` before any transform (None: sizes are not checked)."""
        return None

    #: the data keys that set the ToFrame sensor size (named in the error when it does not fit)
    size_keys = "data.n_channels"

    def check_config(self) -> None:
        """Static checks of the transform against the sensor and data.n_time_bins (no file read)."""
        check_transform(self.user_transform, self.native_sensor_size(), self.n_time_bins, self.size_keys)

    # --- LightningDataModule ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.check_config()
        train = self.make_dataset("train", self.transform)
        self._check_sample_shape(train)  # before any cache builds: a bad transform fails here, once
        if self.has_val_split:
            val = self.make_dataset("val", self.transform)
        else:
            train, val = self._split_train(train)
        test = self.make_dataset("test", self.transform)
        splits = {"train": train, "val": val, "test": test}
        for name, dataset in splits.items():
            bad = self.bad_indices.get(id(getattr(dataset, "dataset", dataset)), set())
            splits[name] = without(dataset, bad)
            self.bad_samples[name] = len(dataset) - len(splits[name])  # type: ignore[arg-type]
        self.cache.on_bad_sample = self.on_bad_sample
        self.cache_splits(splits, self.transform)
        self.count_dropped()

    # --- bad samples (brainlab.data.samples) ------------------------------------------------------------
    def found_bad(self, split: str, dataset: Dataset, bad: dict[int, str]) -> None:
        """Samples of `dataset` (a `CheckedEvents`) found bad at setup: stop at the first (`error`) or keep them
        to be dropped from the index once the splits are made (`skip`), each logged."""
        if isinstance(self.cache, NoCache) and self.on_bad_sample == "skip":
            dataset.fix = (f"{FIX[:FIX.index(' or ')]}, or use a cache (cache=memory|disk) so that "  # type: ignore
                           "data.on_bad_sample=skip drops it when the cache builds")
        if not bad:
            return
        errors = [dataset.bad(i, reason) for i, reason in sorted(bad.items())]  # type: ignore[attr-defined]
        if self.on_bad_sample == "error":
            more = f" ({len(errors) - 1} more bad samples in this split)" if len(errors) > 1 else ""
            raise BadSample(f"{errors[0]}{more}", errors[0].file, errors[0].index, errors[0].reason)
        for error in errors:
            log.warning("skipped a bad sample: %s", error)
        self.bad_indices[id(dataset)] = set(bad)

    def count_dropped(self) -> None:
        """Add the samples the cache build left out to `bad_samples`; a store built by a `skip` run that left some
        out is refused under `error`. Logs the totals."""
        for name, dataset in self.datasets.items():
            dropped = list(getattr(dataset, "dropped", []))
            if dropped and self.on_bad_sample == "error":
                raise DataError(f"{dropped[0]} (this cache entry was built with data.on_bad_sample=skip and "
                                f"leaves {len(dropped)} bad samples out)")
            self.bad_samples[name] = self.bad_samples.get(name, 0) + len(dropped)
        total = sum(self.bad_samples.values())
        if total:
            log.warning("%s: %d bad samples skipped (data.on_bad_sample=skip): %s", self.dataset_name, total,
                        ", ".join(f"{k} {v}" for k, v in self.bad_samples.items()))

    def _split_train(self, train: Dataset) -> tuple[Subset, Subset]:
        """A seeded validation split from the training set; its hash is logged and kept."""
        n = len(train)  # type: ignore[arg-type]
        train_idx, val_idx = holdout(n, self.val_fraction, self.split_seed)
        self.split_hash = index_hash(val_idx)
        log.info("validation split: %d of %d training samples (seed %d, hash %s)",
                 len(val_idx), n, self.split_seed, self.split_hash)
        return Subset(train, train_idx), Subset(train, val_idx)

    def _check_sample_shape(self, dataset: Dataset) -> None:
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise DataError(f"{self.dataset_name}: the training split is empty")
        bad = self.bad_indices.get(id(dataset), set())
        for index in range(len(dataset)):  # type: ignore[arg-type]
            if index in bad:
                continue
            try:
                frames, _ = dataset[index]
                break
            except BadSample:
                if self.on_bad_sample == "error":
                    raise
        else:
            raise DataError(f"{self.dataset_name}: every sample of the training split is bad")
        expected = (self.n_time_bins, *self.input_shape)
        if tuple(np.shape(frames)) != expected:
            raise ConfigError(
                f"data.input_shape={list(self.input_shape)} does not match the frames the transform makes "
                f"({list(np.shape(frames)[1:])}): set data.input_shape to that"
            )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Train-time augmentation of the (cached) frames, on the device; eval batches pass unchanged."""
        trainer = self.trainer
        if trainer is None or not trainer.training or not self.augment.ops:
            return batch
        frames, targets = batch
        return self.augment(frames), targets
