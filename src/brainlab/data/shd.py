"""Spiking Heidelberg Digits (`data=shd`): tonic's `SHD`, 700 channels, 20 classes, seeded validation split.

Files: `<data.root>/SHD/shd_train.h5` and `shd_test.h5` (the `.h5.zip` archives are not needed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tonic

from brainlab.data.tonic_data import OpenOnceHDF5, TonicDataModule, check_hdf5
from brainlab.nets.snn import positive_int


class SHD(OpenOnceHDF5, tonic.datasets.SHD):
    """tonic's SHD reader, HDF5 opened once per worker, never downloading (same name: same folder)."""


class SHDDataModule(TonicDataModule):
    """SHD through the shared event path; validation = a seeded `data.val_fraction` of train."""

    dataset_name = "shd"
    tonic_class = tonic.datasets.SHD
    full_sizes = {"train": 8156, "test": 2264}  # Cramer et al. 2020

    def __init__(self, n_channels: int = 700, **base: Any) -> None:
        super().__init__(**base)
        self.n_channels = positive_int("data.n_channels", n_channels)

    def required(self, split: str) -> list[Path]:
        return [self.folder / f"shd_{'test' if split == 'test' else 'train'}.h5"]

    def download_kwargs(self, split: str) -> dict[str, Any]:
        return {"train": split != "test"}

    def reader(self, split: str, transform: Callable) -> SHD:
        check_hdf5(self.required(split)[0])
        return SHD(save_to=str(self.root), train=split != "test", transform=transform)
