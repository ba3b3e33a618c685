"""An embedded synthetic event dataset, so `python train.py` runs with no download.

Each class is a fixed spatio-temporal pattern of bursts (a channel band firing for a while); every
sample redraws it with a global time shift, per-burst jitter, dropped events and Poisson background noise.
Events come in tonic's format: a structured array with fields t (µs), x (channel), p (polarity), and a
`sensor_size` like SHD's `(channels, 1, 1)`, so the same tonic transforms as for real data apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from brainlab.core.checks import positive_int
from brainlab.data.events import EventDataModule

SPLITS = {"train": 0, "test": 1}


class SyntheticEvents:
    """A seeded, tonic-style dataset of labelled event streams (`dataset[i] -> (events, target)`)."""

    dtype = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
    ordering = dtype.names

    def __init__(
        self,
        split: str = "train",
        n_classes: int = 10,
        n_channels: int = 64,
        duration_us: int = 500_000,
        samples_per_class: int = 100,
        bursts_per_class: int = 4,
        burst_rate_hz: float = 150.0,
        noise_rate_hz: float = 10.0,
        jitter_us: int = 30_000,
        drop_prob: float = 0.3,
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.split = split
        self.n_classes = positive_int("data.n_classes", n_classes)
        self.n_channels = positive_int("data.n_channels", n_channels)
        self.duration_us = positive_int("data.duration_us", duration_us)
        self.samples_per_class = positive_int("data.samples_per_class", samples_per_class)
        self.burst_rate_hz = burst_rate_hz
        self.noise_rate_hz = noise_rate_hz
        self.jitter_us = jitter_us
        self.drop_prob = drop_prob
        self.seed = seed
        self.sensor_size = (self.n_channels, 1, 1)
        self.transform = transform
        self.target_transform = target_transform
        self.templates = self._make_templates(positive_int("data.bursts_per_class", bursts_per_class))

    def _make_templates(self, n_bursts: int) -> np.ndarray:
        """Per class, bursts as rows (first channel, channel width, start µs, length µs).

        Bursts use a small pool of channel bands shared by all classes, so which channels fire does not
        give the class away: the order in time does.
        """
        rng = np.random.default_rng([self.seed, 1_000_003])
        width = max(1, self.n_channels // 8)
        length = max(1, self.duration_us // 6)
        bands = rng.integers(0, self.n_channels - width + 1, size=4)
        first = bands[rng.integers(0, bands.size, size=(self.n_classes, n_bursts))]
        start = rng.integers(0, self.duration_us - length + 1, size=(self.n_classes, n_bursts))
        widths = np.full_like(first, width)
        lengths = np.full_like(first, length)
        return np.stack([first, widths, start, lengths], axis=-1)

    def __len__(self) -> int:
        return self.n_classes * self.samples_per_class

    def generate(self, index: int) -> tuple[np.ndarray, int]:
        """The raw events and label of sample `index` (deterministic in seed, split and index)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        target = index % self.n_classes
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        shift = rng.integers(-self.jitter_us, self.jitter_us + 1)
        times, channels = [], []
        for first, width, start, length in self.templates[target]:
            n = rng.poisson(self.burst_rate_hz * width * length * 1e-6)
            burst_shift = shift + rng.integers(-self.jitter_us // 2, self.jitter_us // 2 + 1)
            times.append(rng.integers(start, start + length, size=n) + burst_shift)
            channels.append(rng.integers(first, first + width, size=n))
        n_noise = rng.poisson(self.noise_rate_hz * self.n_channels * self.duration_us * 1e-6)
        times.append(rng.integers(0, self.duration_us, size=n_noise))
        channels.append(rng.integers(0, self.n_channels, size=n_noise))
        t = np.concatenate(times)
        x = np.concatenate(channels)
        keep = (t >= 0) & (t < self.duration_us) & (rng.random(t.size) >= self.drop_prob)
        events = np.zeros(int(keep.sum()), dtype=self.dtype)
        events["t"], events["x"] = t[keep], x[keep]
        return np.sort(events, order="t"), target

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        events, target = self.generate(index)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target


class SyntheticEventDataModule(EventDataModule):
    """The embedded synthetic set through the shared event data path (`data=synthetic`)."""

    dataset_name = "synthetic"

    def __init__(
        self,
        n_channels: int = 64,
        duration_us: int = 500_000,
        samples_per_class: int = 100,
        test_samples_per_class: int = 30,
        seed: int = 0,
        generator: Mapping[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.generator = dict(
            n_classes=self.num_classes,
            n_channels=positive_int("data.n_channels", n_channels),
            duration_us=positive_int("data.duration_us", duration_us),
            seed=seed,
            **(generator or {}),
        )
        self.samples = {
            "train": positive_int("data.samples_per_class", samples_per_class),
            "test": positive_int("data.test_samples_per_class", test_samples_per_class),
        }

    def make_dataset(self, split: str, transform: Callable) -> SyntheticEvents:
        return SyntheticEvents(
            split=split, samples_per_class=self.samples[split], transform=transform, **self.generator
        )

    def native_sensor_size(self) -> tuple[int, int, int]:
        return (int(self.generator["n_channels"]), 1, 1)

    @property
    def is_full_dataset(self) -> bool:
        """True: the embedded set is generated whole (its own target row, `synthetic`, is measured on it)."""
        return True

    def dataset_id(self) -> str:
        params = {**self.generator, **{f"samples_{k}": v for k, v in self.samples.items()}}
        return "synthetic:" + ",".join(f"{k}={v}" for k, v in sorted(params.items()))
