"""N-MNIST (`data=nmnist`): tonic's `NMNIST`, a 34x34 two-polarity sensor, 10 classes.

Files: `<data.root>/NMNIST/Train/<digit>/*.bin` and `<data.root>/NMNIST/Test/<digit>/*.bin`
(the extracted `train.zip` / `test.zip`).
"""

from __future__ import annotations

from typing import Any

import tonic

from brainlab.data.tonic_data import FolderTonicDataModule, LocalFiles


class NMNIST(LocalFiles, tonic.datasets.NMNIST):
    """tonic's N-MNIST reader; our file check replaces its ">= 10,000 .bin files or download" check."""

    suffix = ".bin"

    def file_problem(self, path: str, size: int) -> str | None:
        if size % 5:
            return f"{size} bytes is not a whole number of 5-byte events: the file is truncated"
        return None


class NMNISTDataModule(FolderTonicDataModule):
    """N-MNIST through the shared event path; validation = a seeded `data.val_fraction` of train."""

    dataset_name = "nmnist"
    tonic_class = tonic.datasets.NMNIST
    reader_class = NMNIST
    split_folders = {"train": "Train", "test": "Test"}
    full_sizes = {"train": 60000, "test": 10000}  # Orchard et al. 2015
    size_keys = ""  # the ToFrame sensor_size is set in the transform itself

    def __init__(self, first_saccade_only: bool = False, stabilize: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.first_saccade_only = first_saccade_only
        self.stabilize = stabilize

    def reader_kwargs(self) -> dict[str, Any]:
        return {"first_saccade_only": self.first_saccade_only, "stabilize": self.stabilize}

    def dataset_id(self) -> str:
        return f"{super().dataset_id()}:saccade1={self.first_saccade_only}:stabilize={self.stabilize}"
