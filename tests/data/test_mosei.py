"""CMU-MOSEI readers on generated files in the real formats (.csd HDF5, MulT and MMSA pickles)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.mosei import (
    DIMS,
    SPLIT_SIZES,
    write_csd,
    write_csd_release,
    write_mmsa_pickle,
    write_mult_pickle,
)

from brainlab.core.errors import ConfigError, DataError  # noqa: E402
from brainlab.data.mosei import (  # noqa: E402
    MoseiDataModule,
    align_to_words,
    clean_nonfinite,
    read_csd,
    read_folds,
)

SMALL = {"train": 12, "valid": 4, "test": 6}


def test_alignment_means_the_frames_inside_each_word_by_hand() -> None:
    words = np.array([[0.0, 1.0], [1.0, 1.5], [1.5, 1.5], [5.0, 6.0]])  # a zero-length word, a word past the end
    frames = np.array([[0.0, 0.5], [0.5, 1.0], [1.0, 1.25], [1.25, 2.0]])
    feats = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [7.0, 70.0]])
    out = align_to_words(words, frames, feats)
    np.testing.assert_allclose(out, [[2.0, 20.0],   # frames 0, 1 (frame 2 only touches the word's end)
                                     [6.0, 60.0],   # frames 2, 3
                                     [7.0, 70.0],   # the instant 1.5 lies in frame 3
                                     [0.0, 0.0]])   # no frame overlaps


def test_clean_nonfinite_counts_what_it_replaces() -> None:
    x = np.array([[1.0, -np.inf], [np.nan, np.inf]])
    cleaned, n = clean_nonfinite(x)
    assert n == 3
    np.testing.assert_array_equal(cleaned, [[1.0, 0.0], [0.0, 0.0]])
    assert clean_nonfinite(np.ones(3))[1] == 0


def test_read_csd_returns_what_was_written(tmp_path: Path) -> None:
    feats, ivs = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[0, 1], [1, 2], [2, 3]], float)
    path = write_csd(tmp_path / "x.csd", "COVAREP", {"v1": (feats, ivs)}, {"dimension names": "f0 f1"})
    seq = read_csd(path)
    assert seq.name == "COVAREP" and list(seq.data) == ["v1"]
    np.testing.assert_array_equal(seq.data["v1"][0], feats)
    np.testing.assert_array_equal(seq.data["v1"][1], ivs)
    assert seq.metadata["dimension names"] == "f0 f1"


def test_bad_csd_files_are_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found: download missing.csd"):
        read_csd(tmp_path / "missing.csd")
    (tmp_path / "junk.csd").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        read_csd(tmp_path / "junk.csd")
    bad = write_csd(tmp_path / "bad.csd", "x", {"v": (np.zeros((3, 2)), np.zeros((2, 2)))})
    with pytest.raises(DataError, match="data/v has features"):
        read_csd(bad)


def test_folds_from_json_and_from_the_sdk_python_file(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text(json.dumps({"train": ["a"], "dev": ["b"], "test": ["c"]}))
    assert read_folds(tmp_path / "f.json") == {"train": ["a"], "valid": ["b"], "test": ["c"]}
    (tmp_path / "std.py").write_text("import os\nstandard_train_fold=['a','b']\nstandard_valid_fold=['c']\n"
                                     "standard_test_fold=['d']\nraise SystemExit('never run')\n")
    assert read_folds(tmp_path / "std.py") == {"train": ["a", "b"], "valid": ["c"], "test": ["d"]}
    (tmp_path / "g.json").write_text(json.dumps({"train": ["a"]}))
    with pytest.raises(DataError, match=r"lacks the split\(s\) \['valid', 'test'\]"):
        read_folds(tmp_path / "g.json")


def test_csd_release_is_segmented_aligned_and_split_by_folds(tmp_path: Path) -> None:
    videos = {"train": ["v0", "v1", "v2"], "valid": ["v3"], "test": ["v4", "v5"]}
    paths = write_csd_release(tmp_path, videos, segments_per_video=2, words_per_segment=4, nonfinite=5)
    dm = MoseiDataModule(root=str(tmp_path), format="csd", fold_file="folds.json", batch_size=4)
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 6, "valid": 2, "test": 4}
    assert dm.cleaned == {"text": 0, "audio": 5, "vision": 0}
    assert dm.input_dims == DIMS and not dm.is_full_dataset
    seg = dm.datasets["train"][1]  # video v0, segment 1: words 4..7
    assert seg["id"] == "v0[1]" and seg["text"].shape == (4, DIMS["text"])
    words = read_csd(paths["text"]).data["v0"]
    vision = read_csd(paths["vision"]).data["v0"]
    np.testing.assert_allclose(seg["text"], words[0][4:8])
    # every word covers three whole frames: the aligned vision row is their plain mean
    np.testing.assert_allclose(seg["vision"][0], vision[0][12:15].mean(0), rtol=1e-5)
    labels = read_csd(paths["labels"]).data["v0"][0]
    assert seg["label"] == pytest.approx(float(labels[1, 0]))
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (4, 4, DIMS["audio"]) and batch["audio_mask"].all()
    assert torch.isfinite(batch["audio"]).all()


def test_csd_format_needs_every_file_and_a_fold_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty .*CMU_MOSEI_COVAREP.csd.*immortal.multicomp"):
        MoseiDataModule(root=str(tmp_path), format="csd").prepare_data()
    write_csd_release(tmp_path, {"train": ["a"], "valid": ["b"], "test": ["c"]})
    with pytest.raises(ConfigError, match="data.fold_file"):
        MoseiDataModule(root=str(tmp_path), format="csd").prepare_data()


def test_mult_pickle_is_read_with_padding_dropped_and_audio_cleaned(tmp_path: Path) -> None:
    path = write_mult_pickle(tmp_path / "mosei_senti_data.pkl", sizes=SMALL, nonfinite=7)
    dm = MoseiDataModule(root=str(tmp_path), format="pickle", batch_size=5)
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == SMALL
    assert dm.cleaned["audio"] == 7 and dm.cleaned["text"] == 0
    import pickle

    raw = pickle.load(open(path, "rb"))["train"]
    seg = dm.datasets["train"][0]
    real = np.any(raw["text"][0] != 0, -1)
    np.testing.assert_array_equal(seg["text"], raw["text"][0][real])
    assert seg["label"] == pytest.approx(float(raw["labels"][0, 0, 0]))
    assert seg["id"] == "vidtrain0/0/1"
    batch = next(iter(dm.test_dataloader()))  # not shuffled: the first 5 test segments
    lengths = [len(dm.datasets["test"][i]["text"]) for i in range(5)]
    assert batch["text_mask"].sum(1).tolist() == lengths and batch["text"].shape[1] == max(lengths)
    assert batch["label"].shape == (5,)
    assert torch.isfinite(next(iter(dm.train_dataloader()))["audio"]).all()
    assert not dm.is_full_dataset


@pytest.mark.parametrize("aligned", [True, False])
def test_mmsa_pickles_use_their_lengths(tmp_path: Path, aligned: bool) -> None:
    name = "aligned_50.pkl" if aligned else "unaligned_50.pkl"
    path = write_mmsa_pickle(tmp_path / name, aligned=aligned, sizes=SMALL)
    dm = MoseiDataModule(root=str(tmp_path), format="pickle", pickle_file=name, batch_size=3,
                         num_workers=0)
    dm.setup()
    import pickle

    raw = pickle.load(open(path, "rb"))["test"]
    seg = dm.datasets["test"][2]
    if aligned:
        assert len(seg["audio"]) == len(seg["text"])
    else:
        assert len(seg["audio"]) == int(raw["audio_lengths"][2]) == 2 * len(seg["text"])
    assert seg["label"] == pytest.approx(float(raw["regression_labels"][2]))
    assert seg["id"] == "vidtest2$_$0"


def test_missing_and_wrong_pickles_say_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty .*mosei_senti_data.pkl.*: put MulT's"):
        MoseiDataModule(root=str(tmp_path)).prepare_data()
    import pickle

    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"train": {"text": 1}}))
    with pytest.raises(DataError, match="no labels/regression_labels"):
        MoseiDataModule(root=str(tmp_path), pickle_file="x.pkl").setup()
    with pytest.raises(ConfigError, match="data.format='hdf5'"):
        MoseiDataModule(root=str(tmp_path), format="hdf5")


def test_is_full_dataset_only_for_the_standard_fold_sizes(tmp_path: Path) -> None:
    assert SPLIT_SIZES != {"train": 16326, "valid": 1871, "test": 4659}
    dm = MoseiDataModule(root=str(tmp_path))
    dm.datasets = {s: list(range(n)) for s, n in {"train": 16326, "valid": 1871, "test": 4659}.items()}
    assert dm.is_full_dataset
    dm.datasets["test"] = list(range(4658))
    assert not dm.is_full_dataset
