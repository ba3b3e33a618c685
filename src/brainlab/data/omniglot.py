"""Omniglot (Lake et al. 2015) as seeded N-way K-shot episodes, read from the official layout.

Unzip `images_background.zip` and `images_evaluation.zip` into `data.root`:
`<root>/images_background/<alphabet>/<character>/*.png` (964 characters, 30 alphabets) and
`<root>/images_evaluation/<alphabet>/<character>/*.png` (659 characters, 20 alphabets), 20 drawings each.
Meta-train and meta-val classes are a seeded split (`data.val_fraction`, `data.split_seed`) of the background
characters; meta-test classes are the evaluation characters, so no class is shared between splits.

Images are decoded with Pillow, resized to `data.image_size`, inverted (strokes = 1) and kept in memory.
Episodes and loaders come from `brainlab.data.episodes` (seeded N-way K-shot, shared with mini-ImageNet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from brainlab.core.errors import DataError
from brainlab.data.base import missing_data
from brainlab.data.episodes import EpisodicDataModule
from brainlab.data.splits import check_fraction

FOLDERS = {"background": "images_background", "evaluation": "images_evaluation"}
ZIPS = ("images_background.zip", "images_evaluation.zip")
FULL_CHARACTERS = {"background": 964, "evaluation": 659}
DRAWINGS_PER_CHARACTER = 20


def character_dirs(folder: Path) -> list[Path]:
    """`<alphabet>/<character>` folders holding at least one PNG, sorted."""
    return sorted(c for a in folder.iterdir() if a.is_dir() for c in a.iterdir()
                  if c.is_dir() and any(c.glob("*.png")))


def load_character(folder: Path, size: int) -> torch.Tensor:
    """All drawings of one character: `(n, 1, size, size)` float, strokes 1, background 0."""
    images = []
    for path in sorted(folder.glob("*.png")):
        try:
            with Image.open(path) as img:
                gray = img.convert("L").resize((size, size), Image.Resampling.LANCZOS)
        except OSError as exc:
            raise DataError(f"cannot read Omniglot image {path} ({exc}): re-extract it from {ZIPS}") from exc
        images.append(1.0 - np.asarray(gray, dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(images)).unsqueeze(1)


class OmniglotDataModule(EpisodicDataModule):
    """Episodic Omniglot: meta-train/val from `images_background`, meta-test from `images_evaluation`."""

    item_name = "drawings"

    def __init__(self, root: str | Path, image_size: int = 28, val_fraction: float = 0.15, split_seed: int = 0,
                 **episodes: Any) -> None:
        super().__init__(root, image_size, **episodes)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.split_seed = split_seed

    def locate(self) -> dict[str, Path]:
        """The two official folders, or one DataError line saying what to unzip where."""
        folders = {k: self.root / v for k, v in FOLDERS.items()}
        missing = [p for p in folders.values() if not p.is_dir() or not character_dirs(p)]
        if missing:
            fix = (f"unzip {' and '.join(ZIPS)} (github.com/brendenlake/omniglot) into {self.root} (-> "
                   f"{self.root}/images_background/<alphabet>/<character>/*.png) or set data.root")
            names = [f"{p}/<alphabet>/<character>/*.png" for p in missing]
            raise missing_data("Omniglot", self.root, names, fix, not_found=(
                f"Omniglot not found: {', '.join(str(p) for p in missing)} missing; {fix}"))
        return folders

    def load_splits(self) -> dict[str, tuple[list[str], list[torch.Tensor]]]:
        folders = self.locate()
        background = character_dirs(folders["background"])
        evaluation = character_dirs(folders["evaluation"])
        order = np.random.default_rng(self.split_seed).permutation(len(background))
        n_val = max(1, round(self.val_fraction * len(background)))
        splits = {"train": [background[i] for i in sorted(order[n_val:])],
                  "val": [background[i] for i in sorted(order[:n_val])], "test": evaluation}
        counts = {"background": background, "evaluation": evaluation}
        self._full = all(
            len(dirs) == FULL_CHARACTERS[k] and all(len(list(d.glob("*.png"))) == DRAWINGS_PER_CHARACTER
                                                    for d in dirs)
            for k, dirs in counts.items()
        )
        return {split: ([f"{d.parent.name}/{d.name}" for d in dirs],
                        [load_character(d, self.image_size) for d in dirs]) for split, dirs in splits.items()}

    @property
    def is_full_dataset(self) -> bool:
        """True only with the official 964 background and 659 evaluation characters of 20 drawings each."""
        return self._full
