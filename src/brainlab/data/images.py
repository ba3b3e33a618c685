"""The shared base of labelled image sets: decoded, resized uint8 tensors -> cache strategy -> batches on the device.

`ImageDataModule` holds splits (a dataset's own val/test, else seeded stratified parts of train), Pillow
decoding in the loader workers (`DecodeImage`), `cache=` and device-side augmentation; a dataset
(`ImageFolderDataModule`, `HFImageDataModule`) only provides its labelled `sources()` and `dataset_id()`.
Batches are `(images float32 (batch, C, H, W) in [0, 1], targets int64)`; cached items are
`(uint8 (C, H, W), label)`, decoded once (resize the shorter side to `data.resize_size`, centre crop
`data.image_size`).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import CachedDataModule
from brainlab.data.caching import CacheStrategy
from brainlab.data.image_aug import ImageAugment, to_unit_float
from brainlab.data.splits import check_fraction, index_hash, stratified_split

log = logging.getLogger(__name__)

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


class ImageDataModule(CachedDataModule):
    """Base for labelled image sets: decoding, seeded stratified splits and train-time augmentation; caching and
    loaders come from `CachedDataModule`."""

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
        super().__init__(cache, batch_size, num_workers, pin_memory, drop_last)
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.image_size = positive_int("data.image_size", image_size)
        resize_size = image_size if resize_size is None else positive_int("data.resize_size", resize_size)
        if resize_size < image_size:
            raise ConfigError(f"data.resize_size={resize_size} must be >= data.image_size={image_size} "
                              "(the shorter side is resized, then the centre image_size square is cropped)")
        if channels not in MODES:
            raise ConfigError(f"data.channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
        self.decode = DecodeImage(self.image_size, resize_size, channels)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.test_fraction = check_fraction("data.test_fraction", test_fraction)
        self.split_seed = split_seed
        self.augment = ImageAugment(augment)
        self.classes: list[str] = []

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.decode.channels, self.image_size, self.image_size)

    # --- what a dataset provides -------------------------------------------------------------------------
    @abstractmethod
    def sources(self) -> dict[str, Dataset]:
        """Labelled datasets of decoded items: "train" always, "val" and/or "test" when the data has them.

        Each has an int64 `labels` array; `self.classes` is set (index -> class name).
        """

    @abstractmethod
    def dataset_id(self) -> str:
        """Identifies the raw data (location, file list) in cache keys."""

    # --- splits --------------------------------------------------------------------------------------------
    def split(self, sources: dict[str, Dataset]) -> dict[str, Dataset]:
        """train/val/test from the sources: missing val/test are seeded stratified parts of train."""
        train = sources["train"]
        wanted = [k for k in ("val", "test") if k not in sources]
        if not wanted:
            return dict(sources)
        fractions = [self.val_fraction if k == "val" else self.test_fraction for k in wanted]
        rest, *parts = stratified_split(train.labels, fractions, self.split_seed)
        out = {"train": Subset(train, rest.tolist())}
        for key, idx in zip(wanted, parts, strict=True):
            if idx.size == 0:
                raise DataError(f"{self.dataset_name}: the {key} split taken from train is empty "
                                f"({len(train)} images): raise data.{key}_fraction or add images")
            out[key] = Subset(train, idx.tolist())
        if rest.size == 0:
            raise DataError(f"{self.dataset_name}: no training images left after the val/test split: "
                            "lower data.val_fraction / data.test_fraction")
        self.split_hash = index_hash(*parts)
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
        self.cache_splits(self.split(sources), self.decode)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Images to float [0, 1] on the device; training batches also go through `data.augment`."""
        images, targets = batch
        images = to_unit_float(images)
        trainer = self.trainer
        if trainer is not None and trainer.training and len(self.augment):
            images = self.augment(images)
        return images, targets
