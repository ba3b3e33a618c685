"""Image classification sets through Hugging Face `datasets` (`data=hf_images data.path=<dir or name>`).

`data.path` is a folder written by `save_to_disk` (read with `load_from_disk`), a local image folder or
data files (`load_dataset("imagefolder", data_dir=...)` style: set `data.path=imagefolder data.data_dir=...`),
or a dataset name already in the Hugging Face cache (`data.cache_dir`), e.g. `ILSVRC/imagenet-1k`. Nothing is
downloaded unless `data.download=true`. Images are decoded with Pillow in the loader workers, exactly as the
folder DataModules do, and cached with the configured `cache=` strategy.

Splits: `data.train_split`; `data.test_split=auto` takes `test` when it has labels, else `validation`, else a
seeded part of train; `data.val_split=null` takes a seeded stratified part of train.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import holds_files, missing_data
from brainlab.data.imagenet import is_imagenet_1k
from brainlab.data.images import DecodeImage, ImageDataModule

log = logging.getLogger(__name__)


@contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Keep `datasets` off the network while loading (its own offline switch), restored afterwards."""
    import datasets.config as hf_config

    names = [n for n in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if hasattr(hf_config, n)]  # newer, older
    saved = {n: getattr(hf_config, n) for n in names}
    for name in names:
        setattr(hf_config, name, saved[name] or offline)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(hf_config, name, value)


def column_array(dataset: Any, column: str) -> np.ndarray:
    """One column of a `datasets.Dataset` as a numpy array (one Arrow read)."""
    return np.asarray(dataset.select_columns([column]).with_format("numpy")[:][column])


class HFImages(Dataset):
    """`(decoded image, label)` rows of one split; the image column is read undecoded (bytes or path)."""

    def __init__(self, dataset: Any, image_column: str, labels: np.ndarray, decode: DecodeImage) -> None:
        import datasets

        images = dataset.select_columns([image_column])
        if isinstance(images.features[image_column], datasets.Image):
            images = images.cast_column(image_column, datasets.Image(decode=False))
        self.images, self.column = images, image_column
        self.labels = np.asarray(labels, dtype=np.int64)
        self.decode = decode

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        value = self.images[int(index)][self.column]
        if isinstance(value, dict):  # an undecoded datasets.Image: {"bytes": ..., "path": ...}
            value = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
        if value is None:
            raise DataError(f"hf_images: row {index} has no image in column {self.column!r}")
        try:
            return self.decode(value), int(self.labels[index])
        except DataError as exc:
            raise DataError(f"hf_images: row {index} of column {self.column!r}: {exc}") from None


class HFImageDataModule(ImageDataModule):
    """An image-classification set loaded with `datasets` (image and label columns configurable)."""

    dataset_name = "hf_images"

    def __init__(
        self,
        path: str,
        name: str | None = None,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        download: bool = False,
        train_split: str = "train",
        val_split: str | None = None,
        test_split: str | None = "auto",
        image_column: str = "image",
        label_column: str = "label",
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if not path:
            raise ConfigError("data.path must name a dataset folder (save_to_disk output, image folder) or a "
                              "Hugging Face dataset name already on disk")
        self.path, self.name, self.data_dir, self.cache_dir = str(path), name, data_dir, cache_dir
        self.download = bool(download)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.image_column, self.label_column = image_column, label_column
        self.counts: dict[str, int] = {}
        self._id = ""

    # --- loading ---------------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """The split name -> `datasets.Dataset` mapping, from disk (or the Hub with data.download=true)."""
        import datasets

        folder = Path(self.path).expanduser()
        saved = folder.is_dir() and any((folder / f).is_file() for f in ("dataset_dict.json", "state.json"))
        if folder.is_dir() and not holds_files(folder):  # a folder, so not a Hub name: say it is empty
            raise missing_data("hf_images", folder, ["a save_to_disk folder (dataset_dict.json) or an image folder "
                                                     "(<dir>/train/<class>/*.jpg)"],
                               "put the dataset there (or point data.path at it), or pass data.download=true with "
                               "a Hugging Face dataset name")
        try:
            if saved:
                loaded = datasets.load_from_disk(str(folder))
            else:
                with hub_offline(not self.download):
                    loaded = datasets.load_dataset(
                        self.path, self.name, data_dir=self.data_dir, cache_dir=self.cache_dir,
                        download_config=datasets.DownloadConfig(local_files_only=not self.download),
                    )
        except Exception as exc:  # datasets raises many types (FileNotFoundError, ConnectionError, ValueError)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"hf_images: cannot load data.path={self.path!r} ({reason}): expected a save_to_disk folder, an "
                "image folder (<dir>/train/<class>/*.jpg) or a dataset name already in the Hugging Face cache "
                "(data.cache_dir); pass data.download=true to download it"
            ) from None
        if isinstance(loaded, datasets.Dataset):
            loaded = {"train": loaded}
        return dict(loaded)

    def pick_test_split(self, splits: dict[str, Any]) -> str | None:
        """`auto`: `test` if its labels are all >= 0 (ImageNet's test labels are -1), else `validation`."""
        wanted = self.splits["test"]
        if wanted != "auto":
            return wanted
        if "test" in splits and self.label_column in splits["test"].column_names \
                and (column_array(splits["test"], self.label_column) >= 0).all():
            return "test"
        return "validation" if "validation" in splits else None

    def label_names(self, train: Any) -> list[str]:
        """Class names: a ClassLabel's names, else the sorted distinct values of the training labels."""
        import datasets

        feature = train.features[self.label_column]
        if isinstance(feature, datasets.ClassLabel):
            return list(feature.names)
        values = column_array(train, self.label_column)
        if np.issubdtype(values.dtype, np.integer):
            return [str(i) for i in range(int(values.max()) + 1)] if values.size else []
        return sorted({str(v) for v in values})

    def labels_of(self, dataset: Any, split: str) -> np.ndarray:
        values = column_array(dataset, self.label_column)
        if not np.issubdtype(values.dtype, np.integer):
            index = {name: i for i, name in enumerate(self.classes)}
            unknown = sorted({str(v) for v in values} - set(index))
            if unknown:
                raise DataError(f"hf_images: split {split!r} has labels not in train: {unknown[:5]}")
            values = np.asarray([index[str(v)] for v in values], dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() >= len(self.classes)):
            raise DataError(f"hf_images: split {split!r} has labels outside 0..{len(self.classes) - 1} in column "
                            f"{self.label_column!r} (unlabelled split?): choose another data.test_split")
        return values.astype(np.int64)

    def sources(self) -> dict[str, Dataset]:
        splits = self.load()
        names = {"train": self.splits["train"], "val": self.splits["val"], "test": self.pick_test_split(splits)}
        for role, split in names.items():
            if split is not None and split not in splits:
                raise DataError(f"hf_images: data.{role}_split={split!r} is not a split of {self.path} "
                                f"(splits: {', '.join(splits)})")
        train = splits[names["train"]]
        for column in (self.image_column, self.label_column):
            if column not in train.column_names:
                key = "image_column" if column == self.image_column else "label_column"
                raise ConfigError(f"data.{key}={column!r} is not a column of {self.path} "
                                  f"(columns: {', '.join(train.column_names)})")
        self.classes = self.label_names(train)
        found = {}
        for role, split in names.items():
            if split is not None:
                labels = self.labels_of(splits[split], split)
                found[role] = HFImages(splits[split], self.image_column, labels, self.decode)
        self.counts = {role: len(ds) for role, ds in found.items()}
        fingerprints = [f"{s}:{getattr(splits[s], '_fingerprint', '')}" for s in names.values() if s]
        self._id = f"{self.path}|{self.name}|{self.image_column}|{self.label_column}|{'|'.join(fingerprints)}"
        log.info("hf_images: %s splits %s, %d classes", self.path, names, len(self.classes))
        return found

    def dataset_id(self) -> str:
        return self._id

    @property
    def is_full_dataset(self) -> bool:
        """True only for the complete ImageNet-1k (the one image row of the target table)."""
        return is_imagenet_1k(len(self.classes), self.counts.get("train", 0), self.counts.get("test", 0))
