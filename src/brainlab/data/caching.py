"""Cache strategies (`cache=none|disk|memory|gpu`): one interface, a wrapper around a transformed dataset.

A strategy gets the dataset whose items are already transformed (frames, target) and a key that names the
dataset, split and transform parameters; it returns a dataset serving the same items, however it stores them.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod

from torch.utils.data import Dataset


def transform_key(*parts: object) -> str:
    """A short stable hash of the parts' reprs (tonic transforms are dataclasses: their repr is their params)."""
    text = "|".join(repr(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CacheStrategy(ABC):
    """Wraps a transformed dataset; `wrap` returns a dataset with the same items."""

    name: str = "abstract"

    @abstractmethod
    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        """Serve `dataset`'s items; `key` identifies dataset, split and transform parameters."""


class NoCache(CacheStrategy):
    """`cache=none`: transform in the loader workers every epoch."""

    name = "none"

    def wrap(self, dataset: Dataset, key: str) -> Dataset:
        return dataset
