"""SHD, SSC, N-MNIST and DVS-Gesture: fixtures in each tonic class's on-disk format, read by the real
tonic classes, end to end into batches and through `brainlab.train.run` for every experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tonic
import torch
from helpers.config import compose_cfg
from helpers.events import make_dvs_gesture, make_nmnist, make_shd, make_ssc
from hydra.utils import instantiate
from omegaconf import OmegaConf

from brainlab.core.errors import DataError  # noqa: E402
from brainlab.data.events import Chain, FixedTimeBins  # noqa: E402
from brainlab.train import run  # noqa: E402

MAKERS = {"shd": make_shd, "ssc": make_ssc, "nmnist": make_nmnist, "dvs_gesture": make_dvs_gesture}
SMALL = {"dvs_gesture": ["data.spatial_factor=0.25", "data.frame_size=32"]}
SHAPES = {"shd": (100, 1, 700), "ssc": (250, 1, 100), "nmnist": (30, 2, 34, 34),
          "dvs_gesture": (20, 2, 32, 32)}


def datamodule(name: str, root: Path, tmp_path: Path, *overrides: str):
    cfg = compose_cfg(tmp_path / "run", [f"data={name}", f"data.root={root}", "data.num_classes=4",
                                          "data.batch_size=4", *SMALL.get(name, []), *overrides])
    return instantiate(cfg.data, _convert_="all")


def tonic_original(name: str, root: Path, split_kwargs: dict, monkeypatch: pytest.MonkeyPatch):
    """tonic's own class reading the same files (its file-count check bypassed, as tonic's tests do)."""
    cls = {"shd": tonic.datasets.SHD, "ssc": tonic.datasets.SSC, "nmnist": tonic.datasets.NMNIST,
           "dvs_gesture": tonic.datasets.DVSGesture}[name]
    monkeypatch.setattr(cls, "_check_exists", lambda self: True)
    return cls(save_to=str(root), **split_kwargs)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_fixture_reads_like_tonic_and_batches(name: str, tmp_path: Path, monkeypatch) -> None:
    root = MAKERS[name](tmp_path / name)
    dm = datamodule(name, root, tmp_path)
    ours = dm.reader("train", transform=None)
    theirs = tonic_original(name, root, dm.download_kwargs("train"), monkeypatch)
    assert len(ours) == len(theirs) > 0
    for i in (0, len(ours) - 1):
        (ev_a, t_a), (ev_b, t_b) = ours[i], theirs[i]
        assert ev_a.dtype == ev_b.dtype and int(t_a) == int(t_b)
        np.testing.assert_array_equal(ev_a, ev_b)
    dm.setup("fit")
    frames, targets = next(iter(dm.train_dataloader()))
    assert frames.dtype == torch.float32 and tuple(frames.shape) == (4, *SHAPES[name])
    assert targets.dtype == torch.int64 and set(targets.tolist()) <= set(range(4))
    assert frames.sum() > 0
    assert dm.is_full_dataset is False, "fixtures are never the published dataset"


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_missing_dataset_is_one_clear_line_and_never_a_download(name: str, tmp_path: Path,
                                                                monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a missing dataset must not start a download")

    monkeypatch.setattr(tonic.dataset.Dataset, "download", fail)
    dm = datamodule(name, tmp_path / "empty", tmp_path)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "empty") in message and "data.download=true" in message


def test_download_failure_names_the_host_and_the_manual_route(tmp_path: Path, monkeypatch) -> None:
    def offline(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tonic.datasets.SHD, "download", offline)
    dm = datamodule("shd", tmp_path / "shd", tmp_path, "data.download=true")
    with pytest.raises(DataError, match=r"download from zenkelab.org failed.*extract them into"):
        dm.setup("fit")


def test_truncated_hdf5_is_a_data_error(tmp_path: Path) -> None:
    root = make_shd(tmp_path / "shd")
    train = root / "SHD" / "shd_train.h5"
    train.write_bytes(train.read_bytes()[:500])
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        datamodule("shd", root, tmp_path).setup("fit")


def test_ssc_binning_matches_a_hand_count() -> None:
    """The blog's transform: x * 100/700, crop at 1 s, 4 ms bins from t=0 -> exactly 250 bins."""
    cfg = OmegaConf.create({"data": OmegaConf.load(Path(__file__).parents[2] / "conf/data/ssc.yaml")})
    transform = Chain(instantiate(cfg.data.transform, _convert_="all"), FixedTimeBins(250))
    events = np.zeros(8, dtype=tonic.datasets.SSC.dtype)
    events["t"] = [0, 3999, 4000, 7999, 996000, 999999, 1000000, 1200000]
    events["x"] = [0, 10, 699, 360, 100, 13, 14, 20]
    events["p"] = 1
    frames = transform(events)
    assert frames.shape == (250, 1, 100)
    # bin = t // 4000; channel = floor(x / 7); t >= 1 s falls outside the 250 bins
    assert sorted(map(tuple, np.argwhere(frames).tolist())) == [
        (0, 0, 0), (0, 0, 1), (1, 0, 51), (1, 0, 99), (249, 0, 1), (249, 0, 14)]
    assert frames.sum() == 6


def test_shd_validation_split_is_seeded_and_hashed(tmp_path: Path) -> None:
    root = make_shd(tmp_path / "shd")
    hashes = []
    for seed in (0, 0, 1):
        dm = datamodule("shd", root, tmp_path, f"data.split_seed={seed}")
        dm.setup("fit")
        hashes.append(dm.split_hash)
        assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 40
    assert hashes[0] == hashes[1] != hashes[2]


def test_shd_validation_by_speaker_shares_no_speaker(tmp_path: Path) -> None:
    root = make_shd(tmp_path / "shd")
    dm = datamodule("shd", root, tmp_path, "data.val_by=speaker", "data.val_fraction=0.3")
    dm.setup("fit")
    speakers = np.asarray(dm.datasets["train"].dataset.speaker)
    train_sp = set(speakers[dm.datasets["train"].indices].tolist())
    val_sp = set(speakers[dm.datasets["val"].indices].tolist())
    assert val_sp and train_sp and not train_sp & val_sp


# per experiment: fixture sizes and a few time bins / small nets, so each run takes seconds on 2 cores;
# each run uses another cache strategy, so every strategy also trains end to end (gpu: its CPU path)
EXPERIMENTS = {
    "ssc_snn": ("ssc", {"train": 16, "events": 600},
                ["data.transform.transforms.2.time_window=100000", "data.n_time_bins=10", "cache=memory"]),
    "shd_snn": ("shd", {"train": 16, "events": 600},
                ["data.transform.transforms.1.time_window=100000", "data.n_time_bins=10", "cache=gpu",
                 "cache.device=cpu"]),
    "nmnist_snn": ("nmnist", {"train": 16},
                   ["data.transform.transforms.0.time_window=30000", "data.n_time_bins=10", "cache=disk"]),
    "dvs_gesture_snn": ("dvs_gesture", {"users": 4},
                        ["data.transform.transforms.1.time_window=600000", "data.n_time_bins=5",
                         "data.spatial_factor=0.125", "data.frame_size=16", "model.net.channels=[4]",
                         "model.net.input_pool=1", "cache=none"]),
}


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_learns_above_chance_on_fixtures(experiment: str, tmp_path: Path) -> None:
    name, sizes, small = EXPERIMENTS[experiment]
    root = MAKERS[name](tmp_path / name, **sizes)
    cfg = compose_cfg(tmp_path / "run", [
        f"experiment={experiment}", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.val_fraction=0.2", *small, "model.net.hidden_dim=16", "model.optimizer.lr=1e-2",
        "trainer.max_epochs=4", "callbacks.progress_bar=null", "trainer.enable_model_summary=false",
        f"paths.data_dir={tmp_path}", "seed=0",
    ])
    metrics = run(cfg)
    assert metrics["test/acc"] > 0.6, f"{experiment}: chance is 0.25, got {metrics['test/acc']}"
    rows = json.loads((tmp_path / "run" / "targets.json").read_text())
    own = next(r for r in rows if r["id"] == cfg.target)
    assert own["status"] == "not measured" and "not the full dataset" in own["note"]


def test_padding_never_changes_a_sample(tmp_path: Path) -> None:
    """Variable-length frames (no ToFrame end_time) pad to data.n_time_bins with empty frames at the end: a
    sample's frames are tonic's own frames plus zeros, the same whatever batch it is served in."""
    root = make_shd(tmp_path / "shd", train=3, test=1, events=40)
    dm = datamodule("shd", root, tmp_path, "data.transform.transforms.1.end_time=null",
                    "data.transform.transforms.1.start_time=null", "data.n_time_bins=120", "data.drop_last=false")
    dm.setup("fit")
    raw = dm.reader("test", transform=dm.user_transform)
    lengths = set()
    for i in range(len(raw)):
        tonic_frames, _ = raw[i]
        ours, _ = dm.datasets["test"][i]
        t = tonic_frames.shape[0]
        lengths.add(t)
        assert t < 120
        np.testing.assert_array_equal(ours[:t], tonic_frames.astype(np.float32))
        assert not ours[t:].any()
    assert len(lengths) > 1, "the fixture has samples of different lengths"
    alone = torch.cat([b[0] for b in dm.cache.loader(dm.datasets["test"], batch_size=1, shuffle=False)])
    together = next(iter(dm.cache.loader(dm.datasets["test"], batch_size=len(raw), shuffle=False)))[0]
    assert torch.equal(alone, together)

