"""DVS128-Gesture (`data=dvs_gesture`): tonic's `DVSGesture` (preprocessed `.npy` recordings), 11 classes.

Files: `<data.root>/DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy` and the same under
`ibmGestureTest` (the extracted `ibmGestureTrain.tar.gz` / `ibmGestureTest.tar.gz`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tonic

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.data.tonic_data import FolderTonicDataModule, LocalFiles


class DVSGesture(LocalFiles, tonic.datasets.DVSGesture):
    """tonic's DVS-Gesture reader; our file check replaces its ">= 100 .npy files or download" check."""

    suffix = ".npy"

    def file_problem(self, path: str, size: int) -> str | None:
        """The .npy header: a 2-D array of 4 columns (x, y, p, t) whose data fills the rest of the file."""
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(fh)
                offset = fh.tell()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            return f"is not a .npy array ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        if len(shape) != 2 or shape[1] != 4:
            return f"holds an array of shape {list(shape)}, not events of 4 columns (x, y, p, t)"
        if dtype.hasobject:
            return "holds Python objects, not numbers"
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        if expected != size:
            return f"is {size} bytes, not the {expected} its header says: truncated"
        return None


class DVSGestureDataModule(FolderTonicDataModule):
    """DVS-Gesture through the shared event path; validation = a seeded `data.val_fraction` of train."""

    dataset_name = "dvs_gesture"
    tonic_class = tonic.datasets.DVSGesture
    reader_class = DVSGesture
    split_folders = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
    full_sizes = {"train": 1077, "test": 264}  # tonic's preprocessed release (Amir et al. 2017)
    size_keys = "data.frame_size with data.spatial_factor"

    def __init__(self, spatial_factor: float = 1.0, frame_size: int = 128, **base: Any) -> None:
        super().__init__(**base)
        if not 0.0 < spatial_factor <= 1.0:
            raise ConfigError(f"data.spatial_factor must be in (0, 1], got {spatial_factor!r}")
        expected = int(128 * spatial_factor)
        if positive_int("data.frame_size", frame_size) != expected:
            raise ConfigError(f"data.frame_size={frame_size} does not match data.spatial_factor="
                              f"{spatial_factor}: set data.frame_size={expected}")
        self.spatial_factor, self.frame_size = spatial_factor, frame_size
