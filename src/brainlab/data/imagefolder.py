"""Any labelled image folder in the ImageNet layout, through the shared image base (`brainlab.data.images`):

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from brainlab.core.errors import DataError
from brainlab.data.base import missing_data
from brainlab.data.images import DecodeImage, ImageDataModule

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


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
            raise missing_data(self.dataset_name, self.root, [f"{train_dir}/<class>/<image>"],
                               f"put the images there: {self.layout()}",
                               not_found=f"{self.dataset_name}: no class folders in {train_dir}: expected "
                                         f"{self.layout()}")
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
