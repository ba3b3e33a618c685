"""The Numenta Anomaly Benchmark as a DataModule: streams served in time order, one file at a time.

`data.root` is a NAB checkout (`git clone https://github.com/numenta/NAB`): `data/<category>/<name>.csv`
(`timestamp,value`), `labels/combined_windows.json` (anomaly windows per file, used as they are) and, where
present, `labels/combined_labels.json` (point labels; a file with labels but no windows gets NAB-built windows)
and `config/profiles.json` (cost profiles). A batch is `rows_per_step` consecutive rows of each file of a
group of `lockstep` files (0 = all) streamed side by side, longest first; each file's rows are in time order.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from brainlab.core.errors import ConfigError, DataError
from brainlab.core.nab_windows import window_rows, windows_from_labels
from brainlab.data.base import DataModule, missing_data
from brainlab.data.samples import bad_sample_policy

log = logging.getLogger(__name__)

NAB_FILES = 58
NAB_ROWS = 365_558
GET_IT = "clone the NAB repository there (git clone https://github.com/numenta/NAB <data.root>) or set data.root"


@dataclass
class Stream:
    """One NAB file: timestamps (datetime64[s]), values, windows as row ranges."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.values)


def read_stream_csv(path: Path, on_bad_sample: str = "error",
                    skipped: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps datetime64[s], values float64) of a NAB data file. A row that does not parse or holds a
    non-finite value stops with its line number (`on_bad_sample="error"`) or is dropped and its line appended to
    `skipped` (`"skip"`)."""
    stamps: list[np.datetime64] = []
    values: list[float] = []
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or header[:2] != ["timestamp", "value"]:
                raise DataError(f"{path} is not a NAB data file: its header is {header}, expected timestamp,value; "
                                "restore it from NAB")
            for row in reader:
                if not row:
                    continue
                problem = row_problem(row)
                if problem is not None:
                    line = (f"{path} line {reader.line_num}: {problem}: restore the file from NAB or set "
                            "data.on_bad_sample=skip")
                    if on_bad_sample != "skip":
                        raise DataError(line)
                    log.warning("skipped a bad row: %s", line)
                    if skipped is not None:
                        skipped.append(line)
                    continue
                stamps.append(np.datetime64(row[0], "s"))
                values.append(float(row[1]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable NAB data file ({type(exc).__name__}: {exc}); restore it from NAB"
                        ) from None
    if not values:
        raise DataError(f"{path} has no usable rows; restore it from the NAB repository")
    return np.array(stamps, dtype="datetime64[s]"), np.array(values, dtype=np.float64)


def row_problem(row: list[str]) -> str | None:
    """What is wrong with one `timestamp,value` row (None: nothing)."""
    if len(row) < 2:
        return f"{len(row)} field(s), expected timestamp,value"
    try:
        np.datetime64(row[0], "s")
    except ValueError:
        return f"timestamp {row[0]!r} is not a date and time"
    try:
        value = float(row[1])
    except ValueError:
        return f"value {row[1]!r} is not a number"
    if not np.isfinite(value):
        return f"value {row[1]!r} is not finite"
    return None


def select(names: Sequence[str], files: Sequence[str] | None) -> list[str]:
    """Corpus names matching `files` (exact names or fnmatch patterns like `realKnownCause/*`)."""
    if files is None:
        return list(names)
    chosen: list[str] = []
    for pattern in files:
        hits = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if not hits:
            raise ConfigError(f"data.files: {pattern!r} matches no NAB file; e.g. {sorted(names)[:3]}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


class ChunkDataset(Dataset):
    """Streams in lockstep groups of `lockstep` files (longest first); a batch is rows `start..start +
    rows_per_step` of every file of one group, padded to the chunk (`length` = real rows of each)."""

    def __init__(self, streams: Sequence[Stream], rows_per_step: int, lockstep: int = 0) -> None:
        self.streams = list(streams)
        order = sorted(range(len(self.streams)), key=lambda f: -len(self.streams[f]))
        size = lockstep if lockstep > 0 else max(1, len(order))
        self.groups = [order[i : i + size] for i in range(0, len(order), size)]
        self.index = [
            (g, start)
            for g, group in enumerate(self.groups)
            for start in range(0, len(self.streams[group[0]]), rows_per_step)
        ]
        self.rows_per_step = rows_per_step

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        g, start = self.index[i]
        streams = [self.streams[f] for f in self.groups[g]]
        width = min(self.rows_per_step, len(streams[0]) - start)
        value = np.zeros((len(streams), width))
        stamp = np.zeros((len(streams), width), dtype=np.int64)
        length = np.zeros(len(streams), dtype=np.int64)
        for k, s in enumerate(streams):
            part = slice(start, min(start + width, len(s)))
            n = max(0, part.stop - part.start)
            value[k, :n] = s.values[part]
            stamp[k, :n] = s.timestamps[part].astype(np.int64)
            length[k] = n
        return {
            "files": [s.name for s in streams],
            "start": start,
            "n_rows": torch.tensor([len(s) for s in streams]),
            "length": torch.from_numpy(length),
            "value": torch.from_numpy(value),
            "timestamp": torch.from_numpy(stamp),
            "input_min": torch.tensor([float(s.values.min()) for s in streams], dtype=torch.float64),
            "input_max": torch.tensor([float(s.values.max()) for s in streams], dtype=torch.float64),
            "first_value": torch.tensor([float(s.values[0]) for s in streams], dtype=torch.float64),
        }


class NABDataModule(DataModule):
    """NAB files (all, or `files`: names / patterns) as chunked streams for fit and test; `lockstep` files
    (0 = all) are served side by side so a detector can run them as one batch (they share no state). Each item
    of the dataset is a whole batch (`batch_size` None)."""

    dataset_name = "nab"

    def __init__(
        self,
        root: str,
        files: Sequence[str] | None = None,
        rows_per_step: int = 4096,
        windows_file: str = "combined_windows.json",
        labels_file: str = "combined_labels.json",
        num_workers: int = 0,
        lockstep: int = 0,
        on_bad_sample: str = "error",
    ) -> None:
        super().__init__(batch_size=None, num_workers=num_workers)
        self.on_bad_sample = bad_sample_policy(on_bad_sample)
        if int(rows_per_step) < 1:
            raise ConfigError(f"data.rows_per_step must be >= 1, got {rows_per_step}")
        if int(lockstep) < 0:
            raise ConfigError(f"data.lockstep must be >= 0 (0 = all files together), got {lockstep}")
        self.lockstep = int(lockstep)
        self.root = Path(root)
        self.files = list(files) if files is not None else None
        self.rows_per_step = int(rows_per_step)
        self.windows_file, self.labels_file = windows_file, labels_file
        self.streams: list[Stream] = []
        self.corpus_names: list[str] = []

    @property
    def profiles_path(self) -> Path | None:
        path = self.root / "config" / "profiles.json"
        return path if path.is_file() else None

    def _load_json(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path}: {exc}; restore it from the NAB repository") from exc

    def setup(self, stage: str | None = None) -> None:
        if self.streams:
            return
        windows_path = self.root / "labels" / self.windows_file
        if not (self.root / "data").is_dir() or not windows_path.is_file():
            csvs = (self.root / "data").is_dir() and any((self.root / "data").rglob("*.csv"))
            missing = [*([] if csvs else ["data/<category>/<name>.csv"]),
                       *([] if windows_path.is_file() else [f"labels/{self.windows_file}"])]
            raise missing_data("NAB corpus", self.root, missing, GET_IT, not_found=(
                f"NAB corpus not found at {self.root} (needs data/<category>/<name>.csv and "
                f"labels/{self.windows_file}): {GET_IT}"))
        windows = self._load_json(windows_path)
        labels_path = self.root / "labels" / self.labels_file
        labels = self._load_json(labels_path) if labels_path.is_file() else {}
        self.corpus_names = sorted(set(windows) | set(labels))
        for name in select(self.corpus_names, self.files):
            path = self.root / "data" / name
            if not path.is_file():
                raise DataError(f"NAB file {path} is missing (listed in labels/): {GET_IT}")
            skipped: list[str] = []
            stamps, values = read_stream_csv(path, self.on_bad_sample, skipped)
            if skipped:
                self.bad_samples["rows"] = self.bad_samples.get("rows", 0) + len(skipped)
            if name in windows:
                rows = window_rows(stamps, windows[name], name)
            else:  # point labels only: NAB's own window construction
                points = np.array(labels[name], dtype="datetime64[s]")
                rows = windows_from_labels(len(values), np.searchsorted(stamps, points).tolist())
            self.streams.append(Stream(name, stamps, values, rows))
        if self.bad_samples:
            log.warning("nab: %d bad rows skipped (data.on_bad_sample=skip)", self.bad_samples["rows"])

    @property
    def is_full_dataset(self) -> bool:
        """True only for the complete published corpus (58 files, 365,558 rows), all selected."""
        return (
            len(self.streams) == NAB_FILES == len(self.corpus_names) and sum(len(s) for s in self.streams) == NAB_ROWS
        )

    def _loader(self) -> DataLoader:
        return self.dataloader(ChunkDataset(self.streams, self.rows_per_step, self.lockstep))

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

