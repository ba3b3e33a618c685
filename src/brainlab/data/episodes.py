"""Seeded N-way K-shot episodes: the sampler and DataModule base every few-shot dataset shares.

A few-shot DataModule (Omniglot, mini-ImageNet) only says where its classes are (`locate`) and how to read
them (`load_splits`: meta-train/val/test class names and images); this base draws the episodes and builds
the loaders. An episode is a dict: `support_x (N*K, C, S, S)`, `support_y (N*K,)`, `query_x (N*Q, C, S, S)`,
`query_y`, `classes` (the N class indices), labels 0..N-1 in a random class order. Batches stack
`data.batch_size` episodes (tasks); `data.<split>_episodes` counts episodes, not batches.

Episode `i` of a split is drawn from `numpy.random.default_rng((seed, split, i))`: the same seed gives the
same episodes; training draws fresh ones every epoch (the sampler's `set_epoch`), evaluation the same ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.data.base import DataModule

log = logging.getLogger(__name__)

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
#: test episodes the field averages over (Finn et al. 2017; Ravi & Larochelle 2017 use 600)
CONVENTIONAL_TEST_EPISODES = 600


class ClassImages(Protocol):
    """The images of one class: `len()` and `images[index_tensor] -> (k, C, S, S)` (a tensor is one)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor: ...


class EpisodeDataset(Dataset):
    """N-way K-shot episodes with Q queries per class over `classes`; `transform` maps stacked images."""

    def __init__(self, classes: Sequence[ClassImages], ways: int, shots: int, queries: int, length: int,
                 seed: int, split: str, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.classes, self.ways, self.shots, self.queries = classes, ways, shots, queries
        self.length, self.seed, self.code, self.transform = length, seed, SPLIT_CODES[split], transform

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.code, int(index)))
        chosen = rng.choice(len(self.classes), size=self.ways, replace=False)
        support, query = [], []
        for c in chosen:
            images = self.classes[c]
            picks = torch.from_numpy(rng.choice(len(images), size=self.shots + self.queries, replace=False))
            drawn = images[picks]
            support.append(drawn[: self.shots])
            query.append(drawn[self.shots:])
        support_x, query_x = torch.cat(support), torch.cat(query)
        if self.transform is not None:
            support_x, query_x = self.transform(support_x), self.transform(query_x)
        labels = torch.arange(self.ways)
        return {
            "support_x": support_x, "support_y": labels.repeat_interleave(self.shots),
            "query_x": query_x, "query_y": labels.repeat_interleave(self.queries),
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


class EpisodicDataModule(DataModule):
    """Shared knobs, checks and loaders of the episodic DataModules; subclasses implement `locate` and
    `load_splits` and set `self._full` (True only for the complete published data). Subclasses take their own
    knobs and pass the rest (`**episodes`) on: the defaults below are the field's 5-way 1-shot setting."""

    #: what one image of a class is called in messages ("drawings" for Omniglot)
    item_name = "images"

    def __init__(self, root: str | Path, image_size: int, ways: int = 5, shots: int = 1, queries: int = 15,
                 train_episodes: int = 1000, val_episodes: int = 100, test_episodes: int = 600, seed: int = 0,
                 batch_size: int = 4, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.root = Path(root)
        self.ways = positive_int("data.ways", ways)
        self.shots = positive_int("data.shots", shots)
        self.queries = positive_int("data.queries", queries)
        self.image_size = positive_int("data.image_size", image_size)
        self.episodes = {split: positive_int(f"data.{split}_episodes", n) for split, n in
                         (("train", train_episodes), ("val", val_episodes), ("test", test_episodes))}
        self.seed = seed
        self.classes: dict[str, Sequence[ClassImages]] = {}
        self.class_names: dict[str, list[str]] = {}
        self.transform: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._full = False

    # --- what a dataset provides ---------------------------------------------------------------------
    def locate(self) -> object:
        """Check the files are there, or raise one DataError line saying which to put where."""
        raise NotImplementedError

    def load_splits(self) -> dict[str, tuple[list[str], Sequence[ClassImages]]]:
        """`{split: (class names, class images)}` for train, val and test; sets `self._full`."""
        raise NotImplementedError

    # --- Lightning -----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.locate()

    def setup(self, stage: str | None = None) -> None:
        if self.classes:
            return
        for split, (names, classes) in self.load_splits().items():
            self.class_names[split], self.classes[split] = names, classes
            self.check_split(split)
        if self.episodes["test"] < CONVENTIONAL_TEST_EPISODES:
            log.warning("data.test_episodes=%d: the field reports the mean over >= %d test episodes",
                        self.episodes["test"], CONVENTIONAL_TEST_EPISODES)
        log.info("%s: %s classes (train/val/test), full dataset: %s", type(self).__name__,
                 "/".join(str(len(self.classes[s])) for s in SPLIT_CODES), self._full)

    def check_split(self, split: str) -> None:
        classes = self.classes[split]
        if len(classes) < self.ways:
            raise ConfigError(f"data.ways={self.ways} but meta-{split} has only {len(classes)} classes: "
                              "lower data.ways")
        fewest = min(len(c) for c in classes)
        if fewest < self.shots + self.queries:
            raise ConfigError(f"data.shots + data.queries = {self.shots + self.queries} but a meta-{split} class "
                              f"has only {fewest} {self.item_name}: lower data.shots or data.queries")

    @property
    def is_full_dataset(self) -> bool:
        return self._full

    def dataset(self, split: str) -> EpisodeDataset:
        self.setup()
        return EpisodeDataset(self.classes[split], self.ways, self.shots, self.queries,
                              self.episodes[split], self.seed, split, self.transform)

    def _loader(self, split: str) -> DataLoader:
        data = self.dataset(split)
        return self.dataloader(data, sampler=EpisodeSampler(len(data), split == "train"))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
