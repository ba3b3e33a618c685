"""Omniglot (Lake et al. 2015) as seeded N-way K-shot episodes, read from the official layout.

Unzip `images_background.zip` and `images_evaluation.zip` into `data.root`:
`<root>/images_background/<alphabet>/<character>/*.png` (964 characters, 30 alphabets) and
`<root>/images_evaluation/<alphabet>/<character>/*.png` (659 characters, 20 alphabets), 20 drawings each.
Meta-train and meta-val classes are a seeded split (`data.val_fraction`, `data.split_seed`) of the background
characters; meta-test classes are the evaluation characters, so no class is shared between splits.

Images are decoded with Pillow, resized to `data.image_size`, inverted (strokes = 1) and kept in memory.
An episode is a dict: `support_x (N*K, 1, S, S)`, `support_y (N*K,)`, `query_x (N*Q, 1, S, S)`, `query_y`,
labels 0..N-1 in a random class order; batches stack `data.batch_size` episodes (tasks);
`data.<split>_episodes` counts episodes (tasks), not batches. Episode `i` of a
split is drawn from `numpy.random.default_rng((seed, split, i))`: the same seed gives the same episodes,
and training draws fresh ones every epoch (the sampler's `set_epoch`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from brainlab.errors import ConfigError, DataError
from brainlab.nets.snn import positive_int

log = logging.getLogger(__name__)

FOLDERS = {"background": "images_background", "evaluation": "images_evaluation"}
ZIPS = ("images_background.zip", "images_evaluation.zip")
FULL_CHARACTERS = {"background": 964, "evaluation": 659}
DRAWINGS_PER_CHARACTER = 20
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


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


class EpisodeDataset(Dataset):
    """N-way K-shot episodes with Q queries per class over `classes` (a list of `(n, 1, S, S)` tensors)."""

    def __init__(self, classes: list[torch.Tensor], ways: int, shots: int, queries: int, length: int,
                 seed: int, split: str) -> None:
        self.classes, self.ways, self.shots, self.queries = classes, ways, shots, queries
        self.length, self.seed, self.code = length, seed, SPLIT_CODES[split]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.code, int(index)))
        chosen = rng.choice(len(self.classes), size=self.ways, replace=False)
        support, query = [], []
        for c in chosen:
            images = self.classes[c]
            picks = torch.from_numpy(rng.choice(len(images), size=self.shots + self.queries, replace=False))
            support.append(images[picks[: self.shots]])
            query.append(images[picks[self.shots:]])
        labels = torch.arange(self.ways)
        return {
            "support_x": torch.cat(support), "support_y": labels.repeat_interleave(self.shots),
            "query_x": torch.cat(query), "query_y": labels.repeat_interleave(self.queries),
            "classes": torch.from_numpy(chosen.astype(np.int64)),
        }


class EpisodeSampler(Sampler[int]):
    """Episode indices `epoch * length + i`: fresh episodes each epoch when `fresh`, else always 0..length-1."""

    def __init__(self, length: int, fresh: bool) -> None:
        self.length, self.fresh, self.epoch = length, fresh, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        start = self.epoch * self.length if self.fresh else 0
        return iter(range(start, start + self.length))

    def __len__(self) -> int:
        return self.length


class OmniglotDataModule(pl.LightningDataModule):
    """Episodic Omniglot: meta-train/val from `images_background`, meta-test from `images_evaluation`."""

    def __init__(
        self,
        root: str | Path,
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        image_size: int = 28,
        train_episodes: int = 1000,
        val_episodes: int = 100,
        test_episodes: int = 600,
        val_fraction: float = 0.15,
        split_seed: int = 0,
        seed: int = 0,
        batch_size: int = 4,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.ways = positive_int("data.ways", ways)
        self.shots = positive_int("data.shots", shots)
        self.queries = positive_int("data.queries", queries)
        self.image_size = positive_int("data.image_size", image_size)
        self.episodes = {"train": positive_int("data.train_episodes", train_episodes),
                         "val": positive_int("data.val_episodes", val_episodes),
                         "test": positive_int("data.test_episodes", test_episodes)}
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction!r}")
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.batch_size = positive_int("data.batch_size", batch_size)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.classes: dict[str, list[torch.Tensor]] = {}
        self.class_names: dict[str, list[str]] = {}
        self._full = False

    def locate(self) -> dict[str, Path]:
        """The two official folders, or one DataError line saying what to unzip where."""
        folders = {k: self.root / v for k, v in FOLDERS.items()}
        missing = [p for p in folders.values() if not p.is_dir() or not character_dirs(p)]
        if missing:
            raise DataError(
                f"Omniglot not found: {', '.join(str(p) for p in missing)} missing; unzip {' and '.join(ZIPS)} "
                f"(github.com/brendenlake/omniglot) into {self.root} (-> {self.root}/images_background/"
                "<alphabet>/<character>/*.png) or set data.root"
            )
        return folders

    def prepare_data(self) -> None:
        self.locate()

    def setup(self, stage: str | None = None) -> None:
        if self.classes:
            return
        folders = self.locate()
        background = character_dirs(folders["background"])
        evaluation = character_dirs(folders["evaluation"])
        order = np.random.default_rng(self.split_seed).permutation(len(background))
        n_val = max(1, round(self.val_fraction * len(background)))
        splits = {"train": [background[i] for i in sorted(order[n_val:])],
                  "val": [background[i] for i in sorted(order[:n_val])], "test": evaluation}
        for split, dirs in splits.items():
            self.class_names[split] = [f"{d.parent.name}/{d.name}" for d in dirs]
            self.classes[split] = [load_character(d, self.image_size) for d in dirs]
            self.check_split(split)
        counts = {"background": background, "evaluation": evaluation}
        self._full = all(
            len(dirs) == FULL_CHARACTERS[k] and all(len(list(d.glob("*.png"))) == DRAWINGS_PER_CHARACTER
                                                    for d in dirs)
            for k, dirs in counts.items()
        )
        log.info("Omniglot: %s classes (train/val/test), full dataset: %s",
                 "/".join(str(len(self.classes[s])) for s in SPLIT_CODES), self._full)

    def check_split(self, split: str) -> None:
        classes = self.classes[split]
        if len(classes) < self.ways:
            raise ConfigError(f"data.ways={self.ways} but meta-{split} has only {len(classes)} classes: "
                              "lower data.ways (or data.val_fraction for val)")
        fewest = min(len(c) for c in classes)
        if fewest < self.shots + self.queries:
            raise ConfigError(f"data.shots + data.queries = {self.shots + self.queries} but a meta-{split} class "
                              f"has only {fewest} drawings: lower data.shots or data.queries")

    @property
    def is_full_dataset(self) -> bool:
        """True only with the official 964 background and 659 evaluation characters of 20 drawings each."""
        return self._full

    def dataset(self, split: str) -> EpisodeDataset:
        self.setup()
        return EpisodeDataset(self.classes[split], self.ways, self.shots, self.queries,
                              self.episodes[split], self.seed, split)

    def _loader(self, split: str) -> DataLoader:
        data = self.dataset(split)
        return DataLoader(data, batch_size=self.batch_size, sampler=EpisodeSampler(len(data), split == "train"),
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
