"""Spiking Heidelberg Digits (`data=shd`): tonic's `SHD`, 700 channels, 20 classes, seeded validation split.

Files: `<data.root>/SHD/shd_train.h5` and `shd_test.h5` (the `.h5.zip` archives are not needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tonic
from torch.utils.data import Dataset, Subset

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.data.splits import index_hash
from brainlab.data.tonic_data import OpenOnceHDF5, TonicDataModule, check_hdf5

log = logging.getLogger(__name__)


class SHD(OpenOnceHDF5, tonic.datasets.SHD):
    """tonic's SHD reader, HDF5 opened once per worker, never downloading (same name: same folder)."""


class SHDDataModule(TonicDataModule):
    """SHD through the shared event path; validation = a seeded `data.val_fraction` of train, drawn by
    sample (`data.val_by=random`) or by whole speakers (`data.val_by=speaker`, no speaker in both)."""

    dataset_name = "shd"
    tonic_class = tonic.datasets.SHD
    full_sizes = {"train": 8156, "test": 2264}  # Cramer et al. 2020

    def __init__(self, n_channels: int = 700, val_by: str = "random", **base: Any) -> None:
        super().__init__(**base)
        self.n_channels = positive_int("data.n_channels", n_channels)
        if val_by not in ("random", "speaker"):
            raise ConfigError(f"data.val_by={val_by!r} is not supported; choose random or speaker")
        self.val_by = val_by

    def _split_train(self, train: Dataset) -> tuple[Subset, Subset]:
        """`val_by=speaker`: hold out whole speakers (seeded) until ~`val_fraction` of train is validation."""
        if self.val_by == "random":
            return super()._split_train(train)
        speakers = np.asarray(train.speaker)  # type: ignore[attr-defined]
        order = np.random.default_rng(self.split_seed).permutation(np.unique(speakers))
        chosen: list[int] = []
        for speaker in order[:-1]:  # at least one speaker stays in train
            if np.isin(speakers, chosen).sum() >= self.val_fraction * len(speakers):
                break
            chosen.append(int(speaker))
        in_val = np.isin(speakers, chosen)
        val_idx, train_idx = np.flatnonzero(in_val).tolist(), np.flatnonzero(~in_val).tolist()
        self.split_hash = index_hash(val_idx)
        log.info("validation split: speakers %s, %d of %d training samples (seed %d, hash %s)",
                 sorted(chosen), len(val_idx), len(speakers), self.split_seed, self.split_hash)
        return Subset(train, train_idx), Subset(train, val_idx)

    def required(self, split: str) -> list[Path]:
        return [self.folder / f"shd_{'test' if split == 'test' else 'train'}.h5"]

    def download_kwargs(self, split: str) -> dict[str, Any]:
        return {"train": split != "test"}

    def reader(self, split: str, transform: Callable) -> SHD:
        check_hdf5(self.required(split)[0])
        return SHD(save_to=str(self.root), train=split != "test", transform=transform)
