"""Labelled images -> decoded, resized uint8 tensors -> cache strategy -> batches on the device.

`ImageDataModule` is the shared base (splits, Pillow decoding in the loader workers, `cache=`, device-side
augmentation); `ImageFolderDataModule` reads any ImageNet-layout folder:

    <root>/train/<class>/<image>    required; classes = the sorted folder names
    <root>/val/<class>/<image>      optional
    <root>/test/<class>/<image>     optional

Splits: `test` = test/ if present, else val/ (the ImageNet convention: val/ is the held-out set), else a
seeded stratified `data.test_fraction` of train; `val` (model selection) = val/ when test/ also exists, else a
seeded stratified `data.val_fraction` of train. Batches are `(images float32 (batch, C, H, W) in [0, 1],
targets int64)`; cached items are `(uint8 (C, H, W), label)`, decoded once (resize the shorter side to
`data.resize_size`, centre crop `data.image_size`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError, DataError
from brainlab.data.caching import CacheStrategy, NoCache, transform_key
from brainlab.data.image_aug import ImageAugment, to_unit_float

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class DecodeImage:
    """A file path (or PIL image) -> uint8 `(channels, image_size, image_size)`; its repr keys the cache.

    JPEGs are decoded at a reduced DCT scale when that still covers `resize_size` (Pillow's `draft`), the
    shorter side is resized to `resize_size` (antialiased bilinear) and the centre `image_size` square kept.
    """

    image_size: int
    resize_size: int
    channels: int = 3

    def __call__(self, source: Any) -> np.ndarray:
        mode = MODES[self.channels]
        try:
            if isinstance(source, Image.Image):
                image = source.convert(mode)
            else:
                with Image.open(source) as raw:
                    raw.draft(mode, (self.resize_size, self.resize_size))
                    image = raw.convert(mode)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot decode image {source}: {exc}; remove or replace the file") from None
        return self.resize_crop(image)

    def resize_crop(self, image: Image.Image) -> np.ndarray:
        w, h = image.size
        scale = self.resize_size / min(w, h)
        size = (max(self.image_size, round(w * scale)), max(self.image_size, round(h * scale)))
        if size != (w, h):
            image = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (size[0] - self.image_size) // 2, (size[1] - self.image_size) // 2
        image = image.crop((left, top, left + self.image_size, top + self.image_size))
        array = np.asarray(image, dtype=np.uint8)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return np.ascontiguousarray(array)


class ImageFiles(Dataset):
    """`(decoded image, label)` for a list of files; `labels` is an int64 array (for stratified splits)."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], decode: DecodeImage) -> None:
        # one bytes array, not a list of str: forked loader workers then share it without copy-on-write
        # page copies from Python refcounts (which grow RAM per worker on ImageNet-sized lists)
        self.paths = np.asarray([os.fsencode(p) for p in paths], dtype=np.bytes_)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.decode = decode

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.decode(os.fsdecode(self.paths[index])), int(self.labels[index])


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the (non-hidden) sub-folders of `folder`."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def image_files(folder: Path) -> list[str]:
    """Sorted image files directly in `folder` (any of IMAGE_EXTENSIONS, any case)."""
    with os.scandir(folder) as entries:
        return sorted(e.path for e in entries
                      if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) and not e.name.startswith("."))


def scan_split(folder: Path, class_to_idx: dict[str, int], what: str, every_class: bool = False
               ) -> tuple[list[str], list[int]]:
    """Files and labels of `<folder>/<class>/*`; every class folder must be a training class (and, with
    `every_class`, hold images)."""
    paths: list[str] = []
    labels: list[int] = []
    for name in class_folders(folder):
        if name not in class_to_idx:
            raise DataError(f"{what}: class folder {folder / name} is not a training class (train/ has "
                            f"{len(class_to_idx)} class folders): rename or remove it")
        files = image_files(folder / name)
        if every_class and not files:
            raise DataError(f"{what}: class folder {folder / name} has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                            "add images or remove the folder")
        paths += files
        labels += [class_to_idx[name]] * len(files)
    if not paths:
        raise DataError(f"{what}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}/<class>/")
    return paths, labels


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Sorted index arrays `[rest, part_1, ...]`, seeded and stratified by class.

    Part k gets `round(n * f_k)` images in all, shared out over the classes in proportion to their sizes
    (largest remainders first), so small sets still get every part and every class keeps its share.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    groups = [g[rng.permutation(g.size)] for g in np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)]
    sizes = np.array([g.size for g in groups])
    taken = np.zeros(len(groups), dtype=np.int64)
    parts: list[np.ndarray] = []
    for fraction in fractions:
        quota = sizes * fraction
        share = np.minimum(np.floor(quota).astype(np.int64), sizes - taken)
        missing = int(round(sizes.sum() * fraction)) - int(share.sum())
        for c in np.argsort(-(quota - np.floor(quota)), kind="stable"):
            if missing <= 0:
                break
            if taken[c] + share[c] < sizes[c]:
                share[c] += 1
                missing -= 1
        parts.append(np.concatenate([g[t:t + n] for g, t, n in zip(groups, taken, share, strict=True)]))
        taken += share
    rest = np.concatenate([g[t:] for g, t in zip(groups, taken, strict=True)])
    return [np.sort(p).astype(np.int64) for p in (rest, *parts)]


class ImageDataModule(pl.LightningDataModule):
    """Base for labelled image sets: splits, decoding, caching, loaders and train-time augmentation."""

    dataset_name = "images"

    def __init__(
        self,
        num_classes: int,
        image_size: int = 224,
        resize_size: int | None = None,
        channels: int = 3,
        cache: CacheStrategy | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        drop_last: bool = False,
        augment: Sequence[torch.nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.image_size = positive_int("data.image_size", image_size)
        resize_size = image_size if resize_size is None else positive_int("data.resize_size", resize_size)
        if resize_size < image_size:
            raise ConfigError(f"data.resize_size={resize_size} must be >= data.image_size={image_size} "
                              "(the shorter side is resized, then the centre image_size square is cropped)")
        if channels not in MODES:
            raise ConfigError(f"data.channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
        self.decode = DecodeImage(self.image_size, resize_size, channels)
        self.batch_size = positive_int("data.batch_size", batch_size)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        for key, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{key} must be in (0, 1), got {value!r}")
        self.cache = cache if cache is not None else NoCache()
        self.num_workers, self.pin_memory, self.drop_last = num_workers, pin_memory, drop_last
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.augment = ImageAugment(augment)
        self.classes: list[str] = []
        self.datasets: dict[str, Dataset] = {}
        self.split_hash: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.decode.channels, self.image_size, self.image_size)

    # --- what a dataset provides -------------------------------------------------------------------------
    @abstractmethod
    def sources(self) -> dict[str, ImageFiles | Dataset]:
        """Labelled datasets of decoded items: "train" always, "val" and/or "test" when the data has them.

        Each has an int64 `labels` array; `self.classes` is set (index -> class name).
        """

    @abstractmethod
    def dataset_id(self) -> str:
        """Identifies the raw data (location, file list) in cache keys."""

    @property
    def is_full_dataset(self) -> bool:
        """True only for the complete published dataset (see ImageNetDataModule)."""
        return False

    # --- splits --------------------------------------------------------------------------------------------
    def split(self, sources: dict[str, Dataset]) -> dict[str, Dataset]:
        """train/val/test from the sources: missing val/test are seeded stratified parts of train."""
        train = sources["train"]
        wanted = [k for k in ("val", "test") if k not in sources]
        if not wanted:
            return dict(sources)
        fractions = [self.val_fraction if k == "val" else self.test_fraction for k in wanted]
        rest, *parts = stratified_split(train.labels, fractions, self.split_seed)
        digest = hashlib.sha256()
        out = {"train": Subset(train, rest.tolist())}
        for key, idx in zip(wanted, parts, strict=True):
            if idx.size == 0:
                raise DataError(f"{self.dataset_name}: the {key} split taken from train is empty "
                                f"({len(train)} images): raise data.{key}_fraction or add images")
            digest.update(idx.astype(np.int64).tobytes())
            out[key] = Subset(train, idx.tolist())
        if rest.size == 0:
            raise DataError(f"{self.dataset_name}: no training images left after the val/test split: "
                            "lower data.val_fraction / data.test_fraction")
        self.split_hash = digest.hexdigest()[:12]
        log.info("%s: %s taken from train (seed %d, hash %s): train %d, %s", self.dataset_name,
                 "/".join(wanted), self.split_seed, self.split_hash, rest.size,
                 ", ".join(f"{k} {p.size}" for k, p in zip(wanted, parts, strict=True)))
        return {**{k: v for k, v in sources.items() if k != "train"}, **out}

    # --- LightningDataModule -------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        sources = self.sources()
        if len(self.classes) != self.num_classes:
            raise ConfigError(f"data.num_classes={self.num_classes} but {self.dataset_name} has "
                              f"{len(self.classes)} classes: set data.num_classes={len(self.classes)}")
        for split, dataset in self.split(sources).items():
            key = transform_key(self.dataset_id(), split, self.decode, self.split_hash)
            self.datasets[split] = self.cache.wrap(dataset, key=f"{self.dataset_name}/{split}/{key}")

    def _loader(self, split: str, shuffle: bool) -> Any:
        return self.cache.loader(
            self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
            drop_last=self.drop_last and shuffle, num_workers=self.num_workers, pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Images to float [0, 1] on the device; training batches also go through `data.augment`."""
        images, targets = batch
        images = to_unit_float(images)
        trainer = self.trainer
        if trainer is not None and trainer.training and len(self.augment):
            images = self.augment(images)
        return images, targets


def folder_id(root: Path, files: Sequence[str]) -> str:
    """The folder and a hash of its file list: adding, removing or renaming a file changes cache keys."""
    digest = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
    return f"{root.resolve()}|{len(files)}|{digest}"


class ImageFolderDataModule(ImageDataModule):
    """Any labelled image folder in the ImageNet layout (`data=imagefolder data.root=<folder>`)."""

    dataset_name = "imagefolder"

    def __init__(self, root: str, train_dir: str = "train", val_dir: str | None = "val",
                 test_dir: str | None = "test", **base: Any) -> None:
        super().__init__(**base)
        self.root = Path(root).expanduser()
        self.dirs = {"train": train_dir, "val": val_dir, "test": test_dir}
        self._id = ""

    def layout(self) -> str:
        return (f"{self.root}/{self.dirs['train']}/<class>/<image> (and optional "
                f"{self.dirs['val']}/<class>/..., {self.dirs['test']}/<class>/...)")

    def sources(self) -> dict[str, Dataset]:
        train_dir = self.root / self.dirs["train"]
        if not train_dir.is_dir() or not class_folders(train_dir):
            raise DataError(f"{self.dataset_name}: no class folders in {train_dir}: expected {self.layout()}")
        self.classes = class_folders(train_dir)
        class_to_idx = {name: i for i, name in enumerate(self.classes)}
        found = {"train": scan_split(train_dir, class_to_idx, self.dataset_name, every_class=True)}
        for split in ("val", "test"):
            folder = self.root / (self.dirs[split] or "")
            if self.dirs[split] and folder.is_dir():
                self.check_split_folder(folder)
                found[split] = scan_split(folder, class_to_idx, self.dataset_name)
        if "val" in found and "test" not in found:  # val/ is the held-out set; model selection from train
            found["test"] = found.pop("val")
            log.info("%s: %s/ serves as the test set; validation is a seeded part of train",
                     self.dataset_name, self.dirs["val"])
        self._id = folder_id(self.root, [p for paths, _ in found.values() for p in paths])
        return {split: ImageFiles(paths, labels, self.decode) for split, (paths, labels) in found.items()}

    def check_split_folder(self, folder: Path) -> None:
        """A split folder holds class folders (a flat folder of images gets a clear message)."""
        if not class_folders(folder) and image_files(folder):
            raise DataError(f"{self.dataset_name}: {folder} holds images but no class folders: sort them "
                            f"into {folder}/<class>/ (same class names as train/)")

    def dataset_id(self) -> str:
        return self._id
