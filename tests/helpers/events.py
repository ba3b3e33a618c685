"""Tiny event datasets written in the exact on-disk format each tonic class reads.

- SHD / SSC: HDF5 with `spikes/times` (vlen float, seconds), `spikes/units` (vlen uint16), `labels`,
  `extra/keys`, `extra/speaker` - under `<root>/SHD/shd_{train,test}.h5`, `<root>/SSC/ssc_{split}.h5`.
- N-MNIST: 5-byte binary events (x, y, polarity bit 7 + 23-bit µs timestamp) under
  `<root>/NMNIST/{Train,Test}/<digit>/<id>.bin`.
- DVS-Gesture: `(events, 4)` arrays of x, y, p, t (ms) in `.npy` under
  `<root>/DVSGesture/{ibmGestureTrain,ibmGestureTest}/user<NN>_<lighting>/<label>.npy`.

Each class fires in its own region (channel band / image stripe), so a short training learns above chance.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def class_band(label: int, n_classes: int, size: int) -> tuple[int, int]:
    """The [low, high) slice of `size` positions where `label` fires."""
    width = size // n_classes
    return label * width, (label + 1) * width


def write_hsd(path: Path, labels: list[int], n_classes: int, n_channels: int = 700,
              duration_s: float = 1.0, events: int = 150, seed: int = 0) -> Path:
    """An SHD/SSC-format HDF5 file with one sample per entry of `labels`."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(labels),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(labels),), dtype=h5py.vlen_dtype(np.uint16))
        for i, label in enumerate(labels):
            low, high = class_band(label, n_classes, n_channels)
            n_signal, n_noise = events, events // 5
            t = rng.uniform(0, duration_s, n_signal + n_noise)
            u = np.concatenate([rng.integers(low, high, n_signal), rng.integers(0, n_channels, n_noise)])
            order = np.argsort(t)
            times[i] = t[order].astype(np.float32)
            units[i] = u[order].astype(np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"class{k}".encode() for k in range(n_classes)]))
        f.create_dataset("extra/speaker", data=np.arange(len(labels), dtype=np.uint16) % 3)
    return path


def balanced(n_per_class: int, n_classes: int) -> list[int]:
    return [k for _ in range(n_per_class) for k in range(n_classes)]


def make_shd(root: Path, n_classes: int = 4, train: int = 10, test: int = 4, events: int = 150,
             seed: int = 0) -> Path:
    """`<root>/SHD/shd_{train,test}.h5` with `train`/`test` samples per class."""
    write_hsd(root / "SHD" / "shd_train.h5", balanced(train, n_classes), n_classes, events=events, seed=seed)
    write_hsd(root / "SHD" / "shd_test.h5", balanced(test, n_classes), n_classes, events=events, seed=seed + 1)
    return root


def make_ssc(root: Path, n_classes: int = 4, train: int = 10, valid: int = 3, test: int = 4,
             events: int = 150, seed: int = 0) -> Path:
    """`<root>/SSC/ssc_{split}.h5` for split in train, valid, test."""
    for i, (split, n) in enumerate((("train", train), ("valid", valid), ("test", test))):
        write_hsd(root / "SSC" / f"ssc_{split}.h5", balanced(n, n_classes), n_classes, events=events,
                  seed=seed + i)
    return root


def encode_nmnist(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    """N-MNIST's 40-bit event encoding: x, y, p<<7 | t>>16, t>>8, t (t < 2**23 µs)."""
    t = t.astype(np.uint32)
    raw = np.zeros((x.size, 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p.astype(np.uint32) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def make_nmnist(root: Path, n_classes: int = 4, train: int = 10, test: int = 4, events: int = 300,
                seed: int = 0) -> Path:
    """`<root>/NMNIST/{Train,Test}/<digit>/<id>.bin`; class k fires in a horizontal stripe of rows."""
    rng = np.random.default_rng(seed)
    for folder, n in (("Train", train), ("Test", test)):
        for k in range(n_classes):
            out = root / "NMNIST" / folder / str(k)
            out.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                low, high = class_band(k, n_classes, 34)
                t = np.sort(rng.integers(0, 300_000, events))
                x, y = rng.integers(0, 34, events), rng.integers(low, high, events)
                p = rng.integers(0, 2, events)
                (out / f"{i:05d}.bin").write_bytes(encode_nmnist(x, y, p, t))
    return root


def make_dvs_gesture(root: Path, n_classes: int = 4, users: int = 3, test_users: int = 1,
                     events: int = 600, seed: int = 0) -> Path:
    """`<root>/DVSGesture/ibmGesture{Train,Test}/user<NN>_led/<label>.npy` (x, y, p, t[ms]) per user."""
    rng = np.random.default_rng(seed)
    for folder, first, count in (("ibmGestureTrain", 1, users), ("ibmGestureTest", 1 + users, test_users)):
        for user in range(first, first + count):
            for lighting in ("led", "fluorescent"):
                out = root / "DVSGesture" / folder / f"user{user:02d}_{lighting}"
                out.mkdir(parents=True, exist_ok=True)
                for k in range(n_classes):
                    low, high = class_band(k, n_classes, 128)
                    t = np.sort(rng.integers(0, 3000, events))  # ms
                    x, y = rng.integers(low, high, events), rng.integers(0, 128, events)
                    p = rng.integers(0, 2, events)
                    np.save(out / f"{k}.npy", np.stack([x, y, p, t], axis=1).astype(np.int64))
    return root
