"""What the four tonic-backed DataModules share: our own file check first, tonic's download only on request.

tonic's dataset classes download whenever their own file check fails (N-MNIST wants >= 10,000 `.bin` files,
DVS-Gesture >= 100 `.npy`, SHD/SSC the `.h5.zip` beside the `.h5`). Here each dataset lists the files it
needs; a missing dataset is one `DataError` naming the folder and files (or `data.download=true`), and the
reader classes (subclasses of tonic's, same names, so tonic's folder layout holds) never download.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from torch.utils.data import Dataset

from brainlab.core.errors import DataError
from brainlab.data.base import missing_data
from brainlab.data.events import EventDataModule
from brainlab.data.samples import CheckedEvents, first_line

log = logging.getLogger(__name__)


def no_download(self: Any) -> None:
    """Replaces tonic's `download` on the readers: our check ran before, so this is a bug if reached."""
    raise DataError(f"{type(self).__name__}: files missing under {self.location_on_system} "
                    "(pass data.download=true to fetch them)")


def files_summary(paths: list[Path]) -> str:
    """Count, total size and newest mtime: enough to notice replaced data in cache keys."""
    stats = [p.stat() for p in paths]
    newest = max((s.st_mtime for s in stats), default=0)
    return f"{len(stats)} files, {sum(s.st_size for s in stats)} B, mtime {newest:.0f}"


class TonicDataModule(EventDataModule):
    """Base for datasets read by a tonic class: `root`, `download`, file checks, full-size accounting."""

    #: the tonic class that downloads (its `base_url`/`url` names the host in error messages)
    tonic_class: type
    #: samples per split of the complete published dataset (for `is_full_dataset`)
    full_sizes: dict[str, int] = {}

    def __init__(self, root: str, download: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.root = Path(root).expanduser()
        self.download = bool(download)
        self.sizes: dict[str, int] = {}

    @property
    def folder(self) -> Path:
        """Where tonic keeps this dataset: `<data.root>/<tonic class name>`."""
        return self.root / self.tonic_class.__name__

    # --- what each dataset says -------------------------------------------------------------------------
    @abstractmethod
    def required(self, split: str) -> list[Path]:
        """The files (or folders) split `split` needs; any missing one stops setup."""

    @abstractmethod
    def reader(self, split: str, transform: Callable) -> Dataset:
        """The non-downloading tonic reader of `split`."""

    @abstractmethod
    def download_kwargs(self, split: str) -> dict[str, Any]:
        """Arguments that make `tonic_class` fetch `split`."""

    def expected_layout(self) -> str:
        """One line describing the files expected under `data.root`."""
        return ", ".join(str(p) for s in self.splits() for p in self.required(s))

    def splits(self) -> list[str]:
        return ["train", "val", "test"] if self.has_val_split else ["train", "test"]

    # --- checks ----------------------------------------------------------------------------------------
    def missing(self, split: str) -> list[Path]:
        return [p for p in self.required(split) if not p.exists()]

    def expected(self, missing: list[Path]) -> list[str]:
        """`missing` (of `self.missing(split)`) as the message names them."""
        return [str(p) for p in missing]

    def check_files(self, split: str) -> None:
        """Raise the one-line message for a missing dataset, or download it when `data.download=true`."""
        if not self.missing(split):
            return
        if self.download:
            self.fetch(split)
            if not self.missing(split):
                return
        absent = self.missing(split)
        fix = (f"put the {self.dataset_name} files under {self.folder} ({self.expected_layout()}), or pass "
               "data.download=true to download them")
        not_found = f"{self.dataset_name}: {', '.join(map(str, absent))} not found. {fix[0].upper()}{fix[1:]}"
        raise missing_data(self.dataset_name, self.folder, self.expected(absent), fix, root=self.root,
                           not_found=not_found)

    def fetch(self, split: str) -> None:
        """tonic's own download (md5-checked); a failure names the host and the manual route."""
        kwargs = self.download_kwargs(split)
        log.info("downloading %s %s into %s", self.dataset_name, split, self.folder)
        try:
            self.tonic_class(save_to=str(self.root), **kwargs)
        except Exception as exc:  # noqa: BLE001 - any network/archive failure becomes one line
            cls = self.tonic_class
            url = getattr(cls, "base_url", None) or getattr(cls, "train_url", "")
            host = urlparse(str(url)).netloc or "the dataset host"
            raise DataError(
                f"{self.dataset_name}: download from {host} failed ({type(exc).__name__}: {exc}); download "
                f"the archives by hand (names and md5 in tonic.datasets.{self.tonic_class.__name__}) and "
                f"extract them into {self.folder}"
            ) from exc

    def make_dataset(self, split: str, transform: Callable) -> Dataset:
        """The split's reader behind the sample checks (`brainlab.data.samples`); the cheap check of every
        sample runs here, at setup (bad ones stop the run or, with data.on_bad_sample=skip, are dropped later)."""
        self.check_files(split)
        dataset = CheckedEvents(self.reader(split, None), transform, self.native_sensor_size(), self.num_classes,
                                self.dataset_name)
        self.sizes[split] = len(dataset)
        if self.sizes[split] == 0:
            raise DataError(f"{self.dataset_name}: no samples found for split {split} under {self.folder}")
        self.found_bad(split, dataset, dataset.scan())
        return dataset

    def native_sensor_size(self) -> tuple[int, int, int]:
        """tonic's class-level sensor size of the raw events."""
        return tuple(int(d) for d in self.tonic_class.sensor_size)  # type: ignore[return-value]

    def dataset_id(self) -> str:
        files: list[Path] = []
        for path in (p for s in self.splits() for p in self.required(s)):
            files += event_files(path, "") if path.is_dir() else [path]
        return f"{self.dataset_name}:{self.root.resolve()}:{files_summary(files)}"

    @property
    def is_full_dataset(self) -> bool:
        """True only when every split has the published number of samples."""
        if not self.sizes or not self.full_sizes:
            return False
        return all(self.sizes.get(k, 0) >= n for k, n in self.full_sizes.items())


def event_files(folder: Path, suffix: str) -> list[Path]:
    """Files with `suffix` below `folder`, sorted (empty when the folder is absent)."""
    if not folder.is_dir():
        return []
    return sorted(Path(d) / f for d, _, names in os.walk(folder) for f in names if f.endswith(suffix))


def check_hdf5(path: Path) -> None:
    """Refuse a truncated or non-HDF5 file with the fix, before tonic opens it."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in file]
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file ({exc}): delete it and download it again "
                        "(data.download=true)") from None
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: it is not an SHD/SSC file; replace it")


class OpenOnceHDF5:
    """Mixin for tonic's SHD/SSC readers: open the HDF5 file once per process, not on every item.

    tonic's `HSD.__getitem__` opens the file for each sample; this keeps one handle per worker process
    (dropped when pickled into a worker) and builds the events exactly as tonic does (times in µs, p=1).
    """

    location_on_system: str
    data_filename: str
    dtype: np.dtype
    transform: Callable | None
    target_transform: Callable | None

    def _h5(self) -> Any:
        import h5py

        if getattr(self, "_handle", None) is None or self._handle_pid != os.getpid():
            path = os.path.join(self.location_on_system, self.data_filename)
            try:
                self._handle = h5py.File(path, "r")
            except OSError as exc:
                raise DataError(f"{path} is not a readable HDF5 file ({exc}): delete it and download "
                                "it again (data.download=true)") from None
            self._handle_pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"] = None
        return state

    def __len__(self) -> int:
        return len(self._h5()["labels"])

    # --- what the sample checks read (brainlab.data.samples) --------------------------------------------
    def sample_file(self, index: int) -> str:
        return os.path.join(self.location_on_system, self.data_filename)

    def labels(self) -> np.ndarray:
        try:
            return np.asarray(self._h5()["labels"][:])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{self.sample_file(0)}: its labels cannot be read ({first_line(exc)}): delete it and "
                            "download it again (data.download=true)") from None

    def quick_problem(self, index: int) -> str | None:
        return None

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        from tonic.io import make_structured_array

        file = self._h5()
        times, units = file["spikes/times"][index], file["spikes/units"][index]
        if len(times) != len(units):
            raise ValueError(f"spikes/times has {len(times)} entries but spikes/units {len(units)}")
        events = make_structured_array(times.astype(np.float64) * 1e6, units, 1, dtype=self.dtype)
        target = file["labels"][index].astype(int)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target

    def _check_exists(self) -> bool:
        return os.path.isfile(os.path.join(self.location_on_system, self.data_filename))

    download = no_download


class LocalFiles:
    """Mixin for tonic's folder readers (N-MNIST, DVS-Gesture): our file check (any `suffix` file under the
    reader's folder) replaces tonic's "enough files or download" check, and the reader never downloads."""

    location_on_system: str
    folder_name: str
    #: the suffix of the event files
    suffix = ""

    def _check_exists(self) -> bool:
        return bool(event_files(Path(self.location_on_system, self.folder_name), self.suffix))

    download = no_download

    # --- what the sample checks read (brainlab.data.samples) --------------------------------------------
    data: list[str]
    targets: list[int]

    def sample_file(self, index: int) -> str:
        return str(self.data[index])

    def labels(self) -> list[int]:
        return self.targets

    def quick_problem(self, index: int) -> str | None:
        """A cheap check of sample `index`'s file (no decoding): its size, its header."""
        try:
            size = os.path.getsize(self.data[index])
        except OSError as exc:
            return f"cannot be read ({first_line(exc)})"
        return "the file is empty (0 bytes)" if size == 0 else self.file_problem(self.data[index], size)

    def file_problem(self, path: str, size: int) -> str | None:
        """The format's own cheap check of a non-empty file."""
        return None


class FolderTonicDataModule(TonicDataModule):
    """A tonic dataset with one folder of event files per split, read by a `LocalFiles` reader."""

    #: the reader: a `LocalFiles` subclass of the tonic class, same name (so tonic's folder layout holds)
    reader_class: type
    #: per split, its folder under `folder`
    split_folders: dict[str, str] = {}

    def required(self, split: str) -> list[Path]:
        return [self.folder / self.split_folders[split]]

    def missing(self, split: str) -> list[Path]:
        return [p for p in self.required(split) if not event_files(p, self.reader_class.suffix)]

    def expected(self, missing: list[Path]) -> list[str]:
        return [f"{p}/<class>/*{self.reader_class.suffix}" for p in missing]

    def download_kwargs(self, split: str) -> dict[str, Any]:
        return {"train": split != "test"}

    def reader_kwargs(self) -> dict[str, Any]:
        """Further arguments of the reader (the dataset's own options)."""
        return {}

    def reader(self, split: str, transform: Callable) -> Dataset:
        return self.reader_class(save_to=str(self.root), train=split != "test", transform=transform,
                                 **self.reader_kwargs())
