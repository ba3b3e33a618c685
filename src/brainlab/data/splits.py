"""Seeded splits shared by the DataModules: a held-out part of a training set, plain or stratified by class,
and the hash that identifies a split (logged, and part of cache keys)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from brainlab.core.errors import ConfigError


def index_hash(*parts: np.ndarray) -> str:
    """12 hex digits identifying index arrays (int64 bytes, in order)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.asarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()[:12]


def holdout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Sorted `(kept, held)` indices of `range(n)`: `max(1, round(n * fraction))` held out, drawn with torch's
    seeded `randperm`."""
    n_held = max(1, int(round(n * fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_held:]), sorted(order[:n_held])


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


def check_fraction(key: str, value: float) -> float:
    """A split fraction strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {value!r}")
    return value
