"""N-MNIST (`data=nmnist`): tonic's `NMNIST`, a 34x34 two-polarity sensor, 10 classes.

Files: `<data.root>/NMNIST/Train/<digit>/*.bin` and `<data.root>/NMNIST/Test/<digit>/*.bin`
(the extracted `train.zip` / `test.zip`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tonic

from brainlab.data.tonic_data import TonicDataModule, event_files, no_download

FOLDERS = {"train": "Train", "test": "Test"}


class NMNIST(tonic.datasets.NMNIST):
    """tonic's N-MNIST reader; our file check replaces its ">= 10,000 .bin files or download" check."""

    def _check_exists(self) -> bool:
        return bool(event_files(Path(self.location_on_system, self.folder_name), ".bin"))

    download = no_download


class NMNISTDataModule(TonicDataModule):
    """N-MNIST through the shared event path; validation = a seeded `data.val_fraction` of train."""

    dataset_name = "nmnist"
    tonic_class = tonic.datasets.NMNIST
    full_sizes = {"train": 60000, "test": 10000}  # Orchard et al. 2015
    size_keys = ""  # the ToFrame sensor_size is set in the transform itself

    def __init__(self, first_saccade_only: bool = False, stabilize: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.first_saccade_only = first_saccade_only
        self.stabilize = stabilize

    def required(self, split: str) -> list[Path]:
        return [self.folder / FOLDERS[split]]

    def missing(self, split: str) -> list[Path]:
        return [p for p in self.required(split) if not event_files(p, ".bin")]

    def download_kwargs(self, split: str) -> dict[str, Any]:
        return {"train": split != "test"}

    def reader(self, split: str, transform: Callable) -> NMNIST:
        return NMNIST(save_to=str(self.root), train=split != "test", transform=transform,
                      first_saccade_only=self.first_saccade_only, stabilize=self.stabilize)

    def dataset_id(self) -> str:
        return f"{super().dataset_id()}:saccade1={self.first_saccade_only}:stabilize={self.stabilize}"
