"""Format-true fixtures shared by tests (moved from data/test_fmnist_data.py)."""


from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An idx-ubyte file: magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 data."""
    array = np.asarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path



def class_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """28x28 images: a bright band of rows per class on dim noise (class k: rows 7k..7k+6)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28))
    for i, k in enumerate(labels):
        images[i, 7 * (k % 4): 7 * (k % 4) + 7] = rng.integers(150, 256, size=(7, 28))
    return images.astype(np.uint8)



def make_fmnist(root: Path, train: int = 40, test: int = 12, n_classes: int = 4, gz: bool = True) -> Path:
    """The four Fashion-MNIST files under `root` with `train`/`test` samples (balanced classes)."""
    for split, n, seed in (("train", train, 0), ("t10k", test, 1)):
        labels = np.arange(n) % n_classes
        write_idx(root / f"{split}-images-idx3-ubyte", class_images(labels, seed), gz=gz)
        write_idx(root / f"{split}-labels-idx1-ubyte", labels, gz=gz)
    return root

