"""Spiking Speech Commands (`data=ssc`): tonic's `SSC`, 700 channels, 35 classes, its own valid split.

Files: `<data.root>/SSC/ssc_train.h5`, `ssc_valid.h5`, `ssc_test.h5` (the `.h5.zip` archives are not needed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tonic

from brainlab.core.checks import positive_int
from brainlab.data.tonic_data import OpenOnceHDF5, TonicDataModule, check_hdf5

TONIC_SPLIT = {"train": "train", "val": "valid", "test": "test"}


class SSC(OpenOnceHDF5, tonic.datasets.SSC):
    """tonic's SSC reader, HDF5 opened once per worker, never downloading (same name: same folder)."""


class SSCDataModule(TonicDataModule):
    """SSC through the shared event path (the blog's dataset)."""

    dataset_name = "ssc"
    has_val_split = True
    tonic_class = tonic.datasets.SSC
    full_sizes = {"train": 75466, "val": 9981, "test": 20382}  # Cramer et al. 2020

    def __init__(self, n_channels: int = 100, **base: Any) -> None:
        super().__init__(**base)
        self.n_channels = positive_int("data.n_channels", n_channels)

    def required(self, split: str) -> list[Path]:
        return [self.folder / f"ssc_{TONIC_SPLIT[split]}.h5"]

    def download_kwargs(self, split: str) -> dict[str, Any]:
        return {"split": TONIC_SPLIT[split]}

    def reader(self, split: str, transform: Callable) -> SSC:
        check_hdf5(self.required(split)[0])
        return SSC(save_to=str(self.root), split=TONIC_SPLIT[split], transform=transform)
