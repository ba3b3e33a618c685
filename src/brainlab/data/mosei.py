"""CMU-MOSEI sentiment (Zadeh et al. 2018) from its two real on-disk forms, one DataModule.

`data.format=csd`: the CMU Multimodal SDK's computational sequences (`.csd`, HDF5). Each file holds one root
group with `data/<video_id>/{features (N, D), intervals (N, 2)}` and `metadata/`. The word-vector sequence
(GloVe, 300-d) gives the words; COVAREP audio (74-d) and FACET/OpenFace visual features are aligned to each
word's interval (mean of the frames that overlap it, as the SDK's `align` with an average collapse does); the
`All Labels` sequence cuts videos into segments (sentiment in [-3, 3] then six emotions). Videos go to
train/valid/test by a fold file (`data.fold_file`): JSON `{"train": [...], "valid": [...], "test": [...]}`
or the SDK's `cmu_mosei_std_folds.py` (read as text, never executed).

`data.format=pickle`: the preprocessed pickles, MulT's aligned `mosei_senti_data.pkl` (`train/valid/test` ->
`text`, `audio`, `vision`, `labels`, `id`) or MMSA's `aligned_50.pkl` / `unaligned_50.pkl`
(`regression_labels`, `audio_lengths`, `vision_lengths`); the schema is told from the keys.

Non-finite values (COVAREP has -inf) become 0 and are counted (`cleaned`, logged). Batches are dicts:
`<modality> (B, L, D)` float32, `<modality>_mask (B, L)` bool (True = a real step), `label (B,)`, `id`.
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import SplitDataModule, missing_data

log = logging.getLogger(__name__)

MODALITIES = ("text", "audio", "vision")
SPLITS = ("train", "valid", "test")
FORMATS = ("csd", "pickle")
#: Segments per split of the standard folds (MulT's and MMSA's pickles, 22,856 in all).
FULL_SIZES = {"train": 16326, "valid": 1871, "test": 4659}
SDK_URL = "http://immortal.multicomp.cs.cmu.edu/CMU-MOSEI/"
CSD_FILES = {
    "text": "CMU_MOSEI_TimestampedWordVectors.csd",
    "audio": "CMU_MOSEI_COVAREP.csd",
    "vision": "CMU_MOSEI_VisualFacet42.csd",
    "labels": "CMU_MOSEI_Labels.csd",
}
CSD_HINT = ("language/CMU_MOSEI_TimestampedWordVectors.csd, acoustic/CMU_MOSEI_COVAREP.csd, "
            "visual/CMU_MOSEI_VisualFacet42.csd (or VisualOpenFace2), labels/CMU_MOSEI_Labels.csd")
PICKLE_HINT = ("MulT's mosei_senti_data.pkl (github.com/yaohungt/Multimodal-Transformer, data link) or MMSA's "
               "MOSEI/Processed/aligned_50.pkl | unaligned_50.pkl (github.com/thuiar/MMSA)")
FOLD_NAMES = {"train": "standard_train_fold", "valid": "standard_valid_fold", "test": "standard_test_fold"}
OVERLAP_EPS = 1e-6  # seconds
SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}


# --- cleaning and alignment ----------------------------------------------------------------------------
def clean_nonfinite(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN and +-inf by 0; return the float32 array and how many values were replaced."""
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        array = np.where(bad, np.float32(0.0), array)
    return array, count


def align_to_words(words: np.ndarray, intervals: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Mean of the feature frames overlapping each word interval: `(W, 2), (N, 2), (N, D) -> (W, D)`.

    A frame overlaps a word when they share more than `OVERLAP_EPS` seconds (float noise in stored
    timestamps, e.g. 1.2000000001 vs 1.2, is no overlap); a zero-length word takes the frames that contain
    its instant. A word no frame overlaps gets zeros.
    """
    words = np.asarray(words, dtype=np.float64).reshape(-1, 2)
    intervals = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    features = np.asarray(features, dtype=np.float32)
    w0, w1 = words[:, :1], words[:, 1:]
    f0, f1 = intervals[None, :, 0], intervals[None, :, 1]
    overlap = np.minimum(w1, f1) - np.maximum(w0, f0) > OVERLAP_EPS
    point = (w1 <= w0) & (f0 <= w0) & (w0 <= f1)
    take = (overlap | point).astype(np.float32)  # (W, N)
    counts = take.sum(1, keepdims=True)
    return (take @ features.reshape(len(intervals), -1)) / np.maximum(counts, 1.0)


# --- computational sequences -----------------------------------------------------------------------------
@dataclass
class CompSeq:
    """One computational sequence: {video_id: (features (N, D), intervals (N, 2))} and its metadata."""

    name: str
    data: dict[str, tuple[np.ndarray, np.ndarray]]
    metadata: dict[str, Any] = field(default_factory=dict)


def read_csd(path: Path) -> CompSeq:
    """Read a `.csd` file with h5py; a missing or malformed file is one DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: download {path.name} from {SDK_URL} into {path.parent}")
    try:
        with h5py.File(path, "r") as f:
            roots = list(f.keys())
            if len(roots) != 1 or not isinstance(f[roots[0]], h5py.Group) or "data" not in f[roots[0]]:
                raise DataError(f"{path}: a computational sequence has one root group holding data/ and "
                                f"metadata/, found {roots}: re-download {path.name}")
            root = f[roots[0]]
            data = {}
            for vid, group in root["data"].items():
                if "features" not in group or "intervals" not in group:
                    raise DataError(f"{path}: data/{vid} lacks features or intervals: re-download {path.name}")
                feats, ivs = group["features"][()], group["intervals"][()]
                if ivs.ndim != 2 or ivs.shape[1] != 2 or len(feats) != len(ivs):
                    raise DataError(f"{path}: data/{vid} has features {feats.shape} and intervals {ivs.shape}"
                                    f" (need (N, D) and (N, 2)): re-download {path.name}")
                data[vid] = (feats.reshape(len(feats), -1), ivs.astype(np.float64))
            metadata = {k: _decode(v[()]) for k, v in root.get("metadata", {}).items()
                        if isinstance(v, h5py.Dataset)}
            return CompSeq(roots[0], data, metadata)
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc}): re-download {path.name} from "
                        f"{SDK_URL}") from None


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        return _decode(value.reshape(-1)[0])
    return value


def read_folds(path: Path) -> dict[str, list[str]]:
    """Video ids per split from JSON, or from the SDK's `cmu_mosei_std_folds.py` (parsed, not run)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"fold file {path} not found: set data.fold_file to a JSON {{train, valid, test}} of "
                        "video ids or to the SDK's mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSEI/"
                        "cmu_mosei_std_folds.py")
    text = path.read_text(encoding="utf-8")
    folds: dict[str, list[str]] = {}
    if path.suffix == ".py":
        wanted = {v: k for k, v in FOLD_NAMES.items()}
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in wanted:
                    folds[wanted[node.targets[0].id]] = [str(v) for v in ast.literal_eval(node.value)]
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"fold file {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
        for split, aliases in SPLIT_ALIASES.items():
            key = next((a for a in aliases if a in raw), None)
            if key is not None:
                folds[split] = [str(v) for v in raw[key]]
    missing = [s for s in SPLITS if s not in folds]
    if missing:
        raise DataError(f"fold file {path} lacks the split(s) {missing}: it needs train, valid and test ids")
    return folds


def csd_segments(seqs: Mapping[str, CompSeq], videos: Sequence[str], max_len: int) -> list[dict[str, Any]]:
    """Cut videos into labelled segments; words inside a segment, audio/vision averaged per word."""
    out: list[dict[str, Any]] = []
    skipped = 0
    for vid in videos:
        if any(vid not in seqs[k].data for k in ("text", "labels")):
            skipped += 1
            continue
        words, word_ivs = seqs["text"].data[vid]
        labels, label_ivs = seqs["labels"].data[vid]
        mids = word_ivs.mean(1)
        for i, (start, end) in enumerate(label_ivs):
            inside = np.nonzero((mids >= start) & (mids < end))[0][:max_len]
            if not len(inside):
                skipped += 1
                continue
            seg = {"id": f"{vid}[{i}]", "label": float(labels[i, 0]), "text": words[inside].astype(np.float32),
                   "emotions": labels[i, 1:].astype(np.float32)}
            for mod in ("audio", "vision"):
                feats, ivs = seqs[mod].data.get(vid, (None, None))
                dim = next(iter(seqs[mod].data.values()))[0].shape[1]
                seg[mod] = (align_to_words(word_ivs[inside], ivs, feats) if feats is not None
                            else np.zeros((len(inside), dim), np.float32))
            out.append(seg)
    if skipped:
        log.warning("MOSEI csd: %d videos/segments without words or labels left out", skipped)
    return out


# --- preprocessed pickles ----------------------------------------------------------------------------
def _split(data: Mapping[str, Any], split: str, path: Path) -> Mapping[str, Any]:
    for alias in SPLIT_ALIASES[split]:
        if alias in data:
            return data[alias]
    raise DataError(f"{path}: no {split!r} split (keys {sorted(data)}): expected {PICKLE_HINT}")


def pickle_segments(data: Mapping[str, Any], split: str, path: Path) -> list[dict[str, Any]]:
    """Segments of one split of a MulT or MMSA pickle, padding steps dropped (masks are rebuilt in batches)."""
    part = _split(data, split, path)
    if "regression_labels" in part:
        labels = np.asarray(part["regression_labels"], dtype=np.float32).reshape(-1)
    elif "labels" in part:
        raw = np.asarray(part["labels"], dtype=np.float32)
        labels = raw.reshape(len(raw), -1)[:, 0]
    else:
        raise DataError(f"{path}: split {split!r} has no labels/regression_labels (keys {sorted(part)}): "
                        f"expected {PICKLE_HINT}")
    missing = [m for m in MODALITIES if m not in part]
    if missing:
        raise DataError(f"{path}: split {split!r} lacks {missing}: expected {PICKLE_HINT}")
    arrays = {m: np.asarray(part[m]) for m in MODALITIES}
    n = len(labels)
    if any(len(a) != n or a.ndim != 3 for a in arrays.values()):
        raise DataError(f"{path}: split {split!r} needs (N, L, D) features for {n} labels, got "
                        f"{ {m: a.shape for m, a in arrays.items()} }")
    lengths = {m: np.asarray(part[f"{m}_lengths"]).reshape(-1) for m in MODALITIES if f"{m}_lengths" in part}
    ids = part.get("id")
    aligned = len({a.shape[1] for a in arrays.values()}) == 1 and not lengths
    out = []
    for i in range(n):
        seg: dict[str, Any] = {"id": _as_id(ids[i]) if ids is not None else f"{split}{i}", "label": float(labels[i])}
        if aligned:  # MulT: zero rows in every modality are padding (front or back)
            real = np.any([np.any(arrays[m][i] != 0, axis=-1) for m in MODALITIES], axis=0)
            real = real if real.any() else np.ones_like(real)
            for m in MODALITIES:
                seg[m] = arrays[m][i][real]
        else:  # MMSA: lengths where given, else non-zero rows
            for m in MODALITIES:
                x = arrays[m][i]
                if m in lengths:
                    keep = x[: max(1, int(lengths[m][i]))]
                else:
                    real = np.any(x != 0, axis=-1)
                    keep = x[real] if real.any() else x[:1]
                seg[m] = keep
        out.append(seg)
    return out


def _as_id(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "/".join(_as_id(v) for v in value.reshape(-1))
    return value.decode() if isinstance(value, bytes) else str(value)


# --- dataset and batches -------------------------------------------------------------------------------
class MoseiDataset(Dataset):
    """Segments as dicts of float32 arrays `(L_m, D_m)` per modality, a float label and an id."""

    def __init__(self, segments: Sequence[dict[str, Any]]) -> None:
        self.segments = list(segments)

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.segments[index]


def collate_mosei(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pad every modality at the end to the batch's longest; masks mark real steps."""
    batch: dict[str, Any] = {"label": torch.tensor([it["label"] for it in items], dtype=torch.float32),
                             "id": [it["id"] for it in items]}
    for m in MODALITIES:
        if m not in items[0]:
            continue
        length = max(1, max(len(it[m]) for it in items))
        dim = items[0][m].shape[-1]
        x = np.zeros((len(items), length, dim), dtype=np.float32)
        mask = np.zeros((len(items), length), dtype=bool)
        for i, it in enumerate(items):
            x[i, : len(it[m])] = it[m]
            mask[i, : len(it[m])] = True
        batch[m], batch[f"{m}_mask"] = torch.from_numpy(x), torch.from_numpy(mask)
    return batch


class MoseiDataModule(SplitDataModule):
    """CMU-MOSEI train/valid/test from `.csd` sequences or a preprocessed pickle (`data.format`)."""

    dataset_name = "mosei"
    val_split = "valid"
    collate_fn = staticmethod(collate_mosei)

    def __init__(
        self,
        root: str,
        format: str = "pickle",
        pickle_file: str = "mosei_senti_data.pkl",
        csd_files: Mapping[str, str] | None = None,
        fold_file: str | None = None,
        max_len: int = 50,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.root = Path(root)
        self.format = check_choice("data.format", format, FORMATS)
        self.pickle_file = pickle_file
        files = dict(csd_files or {})
        unknown = set(files) - set(CSD_FILES)
        if unknown:
            raise ConfigError(f"data.csd_files has unknown key(s) {sorted(unknown)}; keys: {sorted(CSD_FILES)}")
        self.csd_files = {**CSD_FILES, **files}
        self.fold_file = fold_file
        self.max_len = positive_int("data.max_len", max_len)
        self.datasets: dict[str, MoseiDataset] = {}
        self.cleaned: dict[str, int] = {m: 0 for m in MODALITIES}

    # --- files ------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.root / path

    def locate(self) -> dict[str, Path]:
        """The files of the chosen format; missing ones are one line naming what to download and where."""
        if self.format == "pickle":
            path = self._path(self.pickle_file)
            if not path.is_file():
                fix = (f"put {PICKLE_HINT} into {self.root} and set data.pickle_file (or use data.format=csd with the "
                       "SDK's .csd files)")
                raise missing_data("MOSEI", path.parent, [path.name], fix, root=self.root,
                                   not_found=f"MOSEI pickle {path} not found: {fix}")
            return {"pickle": path}
        paths = {k: self._path(v) for k, v in self.csd_files.items()}
        missing = [p.name for p in paths.values() if not p.is_file()]
        if missing:
            fix = f"download {CSD_HINT} from {SDK_URL} into {self.root} (names via data.csd_files)"
            raise missing_data("MOSEI computational sequences", self.root, missing, fix,
                               not_found=f"MOSEI computational sequences {missing} not found in {self.root}: {fix}")
        if self.fold_file is None:
            raise ConfigError("data.format=csd needs data.fold_file: a JSON {train, valid, test} of video ids or "
                              "the SDK's cmu_mosei_std_folds.py")
        paths["folds"] = self._path(self.fold_file)
        return paths

    def prepare_data(self) -> None:
        self.locate()

    # --- LightningDataModule --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        paths = self.locate()
        splits = self._read_pickle(paths["pickle"]) if self.format == "pickle" else self._read_csd(paths)
        for split, segments in splits.items():
            for seg in segments:
                for m in MODALITIES:
                    seg[m], n = clean_nonfinite(seg[m])
                    self.cleaned[m] += n
            if not segments:
                raise DataError(f"MOSEI {self.format}: the {split} split is empty: check the files in {self.root}")
            self.datasets[split] = MoseiDataset(segments)
        total = sum(self.cleaned.values())
        if total:
            log.warning("MOSEI: %d non-finite feature values (NaN/inf) set to 0: %s", total,
                        ", ".join(f"{m} {n}" for m, n in self.cleaned.items()))
        log.info("MOSEI %s: %s segments", self.format, {s: len(d) for s, d in self.datasets.items()})

    def _read_pickle(self, path: Path) -> dict[str, list[dict[str, Any]]]:
        try:
            with open(path, "rb") as f:
                data = pickle.load(f)
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"{path}: not a readable pickle ({exc}): re-download it ({PICKLE_HINT})") from None
        if not isinstance(data, Mapping):
            raise DataError(f"{path}: expected a dict of train/valid/test, got {type(data).__name__}")
        return {s: pickle_segments(data, s, path) for s in SPLITS}

    def _read_csd(self, paths: Mapping[str, Path]) -> dict[str, list[dict[str, Any]]]:
        seqs = {k: read_csd(paths[k]) for k in CSD_FILES}
        for mod in MODALITIES:  # clean the raw frames (before alignment spreads a NaN over a word)
            for vid, (feats, ivs) in seqs[mod].data.items():
                feats, n = clean_nonfinite(feats)
                seqs[mod].data[vid] = (feats, ivs)
                self.cleaned[mod] += n
        folds = read_folds(paths["folds"])
        return {s: csd_segments(seqs, folds[s], self.max_len) for s in SPLITS}

    @property
    def input_dims(self) -> dict[str, int]:
        """Feature size per modality (after setup)."""
        self.setup()
        first = self.datasets["train"][0]
        return {m: int(first[m].shape[-1]) for m in MODALITIES}

    @property
    def is_full_dataset(self) -> bool:
        """True only when the splits hold exactly the standard folds' segment counts (16326/1871/4659)."""
        return bool(self.datasets) and all(len(self.datasets.get(s, ())) == n for s, n in FULL_SIZES.items())
