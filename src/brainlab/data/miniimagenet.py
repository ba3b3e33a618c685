"""mini-ImageNet (Vinyals et al. 2016) with the split of Ravi & Larochelle (2017), as seeded N-way K-shot episodes.

`data.root` holds the split CSVs `train.csv`, `val.csv`, `test.csv` (header `filename,label`, e.g.
`n0153282900000005.jpg,n01532829`) and an `images/` folder with the JPEGs they name: 64 / 16 / 20 classes
of 600 images each, no class in two splits. Meta-train/val/test classes are those of the three CSVs.

Images are decoded with Pillow (RGB, or gray for `data.channels=1`), resized to `data.image_size` (84 as
in the literature) and kept in memory as uint8 (`data.preload=true`, about 1.3 GB for the full set at 84x84),
or decoded per episode in the loader workers (`data.preload=false`). Episodes hold floats in [0, 1].
Episodes and loaders come from `brainlab.data.episodes` (seeded, shared with Omniglot).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import missing_data
from brainlab.data.episodes import SPLIT_CODES, EpisodicDataModule

CSVS = {split: f"{split}.csv" for split in SPLIT_CODES}
IMAGES = "images"
HEADER = ["filename", "label"]
FULL_CLASSES = {"train": 64, "val": 16, "test": 20}
IMAGES_PER_CLASS = 600
MODES = {1: "L", 3: "RGB"}


def read_split(path: Path) -> dict[str, list[str]]:
    """`{label: [filename, ...]}` of one split CSV, labels sorted, files in CSV order."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read mini-ImageNet split {path} ({exc}): replace it with the split CSV") from exc
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        raise DataError(f"mini-ImageNet split {path} must start with the header 'filename,label', "
                        f"got {','.join(rows[0]) if rows else 'an empty file'}")
    classes: dict[str, list[str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not all(c.strip() for c in row):
            raise DataError(f"mini-ImageNet split {path} line {line} is not 'filename,label': {','.join(row)}")
        classes.setdefault(row[1].strip(), []).append(row[0].strip())
    if not classes:
        raise DataError(f"mini-ImageNet split {path} lists no images")
    return dict(sorted(classes.items()))


def decode_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One JPEG as a `(channels, size, size)` uint8 tensor."""
    mode = MODES[channels]
    try:
        with Image.open(path) as img:
            img.draft(mode, (size, size))  # JPEG: decode at a reduced scale when the file is large
            img = img.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.LANCZOS)
            array = np.array(img, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot decode mini-ImageNet image {path} ({exc}): replace the file") from exc
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


class FileImages:
    """One class's images, decoded on access: `images[index] -> (k, C, S, S)` uint8 (the lazy path)."""

    def __init__(self, paths: list[Path], size: int, channels: int) -> None:
        self.paths, self.size, self.channels = paths, size, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return torch.stack([decode_image(self.paths[i], self.size, self.channels) for i in index.tolist()])

    def load(self, pool: ThreadPoolExecutor) -> torch.Tensor:
        """All images of the class, decoded on `pool`'s threads (Pillow decodes without the GIL)."""
        return torch.stack(list(pool.map(lambda p: decode_image(p, self.size, self.channels), self.paths)))


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]."""
    return images.float().div_(255.0)


class MiniImageNetDataModule(EpisodicDataModule):
    """Episodic mini-ImageNet over the Ravi & Larochelle split CSVs (see the module docstring)."""

    def __init__(self, root: str | Path, image_size: int = 84, channels: int = 3, preload: bool = True,
                 **episodes: Any) -> None:
        super().__init__(root, image_size, **episodes)
        if channels not in MODES:
            raise ConfigError(f"data.channels must be 3 (RGB) or 1 (gray), got {channels!r}")
        self.channels, self.preload = channels, bool(preload)
        self.transform = to_unit_float

    def locate(self) -> dict[str, Path]:
        """The three split CSVs and the image folder, or one DataError line naming what to put where."""
        paths = {split: self.root / name for split, name in CSVS.items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if not (self.root / IMAGES).is_dir():
            missing.append(f"{self.root / IMAGES}/")
        if missing:
            fix = (f"put the Ravi & Larochelle split CSVs ({', '.join(CSVS.values())}, columns filename,label) and "
                   f"the {IMAGES}/ folder of the 60,000 JPEGs they name (n0153282900000005.jpg ...) in {self.root}, "
                   "or set data.root")
            raise missing_data("mini-ImageNet", self.root, missing, fix,
                               not_found=f"mini-ImageNet not found: {', '.join(missing)} missing; {fix}")
        return paths

    def load_splits(self) -> dict[str, tuple[list[str], list]]:
        splits = {split: read_split(path) for split, path in self.locate().items()}
        seen: dict[str, str] = {}
        for split, classes in splits.items():
            for label in classes:
                if label in seen:
                    raise DataError(f"mini-ImageNet class {label} is in both {CSVS[seen[label]]} and "
                                    f"{CSVS[split]}: meta-train/val/test classes must be disjoint")
                seen[label] = split
        folder = self.root / IMAGES
        files = {split: {label: [folder / name for name in names] for label, names in classes.items()}
                 for split, classes in splits.items()}
        absent = [p for classes in files.values() for paths in classes.values() for p in paths if not p.is_file()]
        if absent:
            raise DataError(f"mini-ImageNet: {len(absent)} images named in the split CSVs are missing from {folder} "
                            f"(first: {absent[0].name}); copy them there or fix the CSVs")
        self._full = all(
            len(splits[split]) == n and all(len(names) == IMAGES_PER_CLASS for names in splits[split].values())
            for split, n in FULL_CLASSES.items()
        )
        lazy = {split: [FileImages(paths, self.image_size, self.channels) for paths in classes.values()]
                for split, classes in files.items()}
        if self.preload:
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                lazy = {split: [images.load(pool) for images in classes] for split, classes in lazy.items()}
        return {split: (list(files[split]), classes) for split, classes in lazy.items()}

    @property
    def is_full_dataset(self) -> bool:
        """True only with the complete split: 64 / 16 / 20 classes of 600 images each."""
        return self._full
