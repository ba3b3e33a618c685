"""Generated CMU-MOSEI files in the real on-disk formats: SDK `.csd` (HDF5), MulT and MMSA pickles.

The generated sentiment is a function of one modality (`informative`): its feature 0 averages to `s` over a
segment and the label is `2 s` (clipped to [-3, 3]); the other modalities are noise.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

DIMS = {"text": 12, "audio": 6, "vision": 5}
SPLIT_SIZES = {"train": 160, "valid": 40, "test": 60}


def write_csd(path: Path, name: str, data: Mapping[str, tuple[np.ndarray, np.ndarray]],
              metadata: Mapping[str, str] | None = None) -> Path:
    """One computational sequence: root group `name` with data/<vid>/{features,intervals} and metadata/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        root = f.create_group(name)
        group = root.create_group("data")
        for vid, (features, intervals) in data.items():
            g = group.create_group(vid)
            g.create_dataset("features", data=np.asarray(features))
            g.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64))
        meta = root.create_group("metadata")
        for key, value in {"root name": name, "dimension names": "generated", **(metadata or {})}.items():
            meta.create_dataset(key, data=np.array([value.encode()], dtype=object),
                                dtype=h5py.special_dtype(vlen=bytes))
    return path


def write_csd_release(root: Path, videos: Mapping[str, list[str]], segments_per_video: int = 2,
                      words_per_segment: int = 4, frames_per_word: int = 3, seed: int = 0,
                      nonfinite: int = 0) -> dict[str, Path]:
    """Word vectors, COVAREP-like audio, FACET-like vision, labels and a JSON fold file into `root`.

    Words last 0.3 s; audio and vision frames tile each word `frames_per_word` times. `nonfinite` audio values
    (spread as -inf and NaN) are planted in feature 1.
    """
    rng = np.random.default_rng(seed)
    text, audio, vision, labels = {}, {}, {}, {}
    planted = 0
    for vid in [v for split in videos.values() for v in split]:
        n_words = segments_per_video * words_per_segment
        starts = np.arange(n_words) * 0.3
        words = np.stack([starts, starts + 0.3], 1)
        text[vid] = (rng.normal(size=(n_words, DIMS["text"])).astype(np.float32), words)
        step = 0.3 / frames_per_word
        f_starts = np.arange(n_words * frames_per_word) * step
        frames = np.stack([f_starts, f_starts + step], 1)
        a = rng.normal(size=(len(frames), DIMS["audio"])).astype(np.float32)
        seg_len = words_per_segment * 0.3
        s = rng.uniform(-1.5, 1.5, size=segments_per_video)
        a[:, 0] = s[np.minimum((f_starts // seg_len).astype(int), segments_per_video - 1)]
        while planted < nonfinite:
            a[planted % len(a), 1] = -np.inf if planted % 2 == 0 else np.nan
            planted += 1
        audio[vid] = (a, frames)
        vision[vid] = (rng.normal(size=(len(frames), DIMS["vision"])).astype(np.float32), frames)
        seg = np.stack([np.arange(segments_per_video) * seg_len, (np.arange(segments_per_video) + 1) * seg_len], 1)
        lab = np.zeros((segments_per_video, 7), np.float32)
        lab[:, 0] = np.clip(2 * s, -3, 3)
        labels[vid] = (lab, seg)
    paths = {
        "text": write_csd(root / "CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors", text),
        "audio": write_csd(root / "CMU_MOSEI_COVAREP.csd", "COVAREP", audio),
        "vision": write_csd(root / "CMU_MOSEI_VisualFacet42.csd", "FACET 4.2", vision),
        "labels": write_csd(root / "CMU_MOSEI_Labels.csd", "All Labels", labels),
    }
    paths["folds"] = root / "folds.json"
    paths["folds"].write_text(json.dumps({k: list(v) for k, v in videos.items()}))
    return paths


def make_split(n: int, length: int, rng: np.random.Generator, informative: str,
               lengths: bool = False) -> dict[str, np.ndarray]:
    """Features `(n, length, D)` per modality (zero-padded at the front, as MulT's), labels = 2 s."""
    s = rng.uniform(-1.5, 1.5, size=n)
    real = rng.integers(length // 2, length + 1, size=n)
    out: dict[str, np.ndarray] = {}
    for mod, dim in DIMS.items():
        x = rng.normal(size=(n, length, dim)).astype(np.float32)
        if mod == informative:
            x[:, :, 0] = s[:, None] + 0.1 * rng.normal(size=(n, length))
        for i in range(n):
            x[i, : length - real[i]] = 0.0
        out[mod] = x
    out["labels"] = np.clip(2 * s, -3, 3).astype(np.float32)
    out["real"] = real
    return out


def write_mult_pickle(path: Path, informative: str = "audio", length: int = 8, seed: int = 0,
                      sizes: Mapping[str, int] = SPLIT_SIZES, nonfinite: int = 0) -> Path:
    """MulT's `mosei_senti_data.pkl`: {split: {text, audio, vision, labels (N, 1, 1), id (N, 3)}}."""
    rng = np.random.default_rng(seed)
    data = {}
    planted = 0
    for split, n in sizes.items():
        d = make_split(n, length, rng, informative)
        audio = d["audio"]
        while planted < nonfinite and split == "train":
            audio[planted % n, -1, 1] = -np.inf if planted % 2 == 0 else np.nan
            planted += 1
        ids = np.array([[f"vid{split}{i}", "0", "1"] for i in range(n)])
        data[split] = {"text": d["text"], "audio": audio, "vision": d["vision"],
                       "labels": d["labels"].reshape(n, 1, 1), "id": ids}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def write_mmsa_pickle(path: Path, aligned: bool = True, informative: str = "audio", length: int = 8,
                      seed: int = 0, sizes: Mapping[str, int] = SPLIT_SIZES) -> Path:
    """MMSA's aligned_50 / unaligned_50.pkl: end-padded features, lengths, regression_labels, raw_text."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in sizes.items():
        d = make_split(n, length, rng, informative)
        part: dict[str, object] = {"id": [f"vid{split}{i}$_$0" for i in range(n)],
                                   "raw_text": ["generated"] * n,
                                   "regression_labels": d["labels"],
                                   "classification_labels": (d["labels"] > 0).astype(np.float32)}
        for mod in DIMS:
            x = np.zeros_like(d[mod])
            for i in range(n):  # MMSA pads at the end
                x[i, : d["real"][i]] = d[mod][i, length - d["real"][i]:]
            part[mod] = x
        if not aligned:
            long = 2 * length  # audio/vision at their own (longer) rate
            for mod in ("audio", "vision"):
                x = np.zeros((n, long, DIMS[mod]), np.float32)
                x[:, : 2 * length] = np.repeat(part[mod], 2, axis=1)
                part[mod] = x
            part["audio_lengths"] = 2 * d["real"]
            part["vision_lengths"] = 2 * d["real"]
        data[split] = part
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path
