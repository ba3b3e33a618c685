"""Corrupt samples inside valid datasets: one `DataError` line naming the file and the sample (or line), and
`data.on_bad_sample=skip` dropping them from the index at setup or cache build, counted in the run record."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers.config import compose_cfg
from helpers.events import make_dvs_gesture, make_nmnist, make_ssc
from helpers.nab_corpus import write_corpus
from hydra.utils import instantiate

from brainlab.core.errors import DataError, find_brainlab_error
from brainlab.data.nab import NABDataModule

SMALL = {"dvs_gesture": ["data.spatial_factor=0.25", "data.frame_size=32"]}


def datamodule(name: str, root: Path, tmp_path: Path, *overrides: str):
    cfg = compose_cfg(tmp_path / "run", [f"data={name}", f"data.root={root}", "data.num_classes=4",
                                          "data.batch_size=2", "data.drop_last=false", *SMALL.get(name, []),
                                          *overrides])
    return instantiate(cfg.data, _convert_="all")


def one_line(call, *names: str) -> str:
    with pytest.raises(Exception) as err:  # noqa: PT011 - instantiate may wrap it: unwrapped below
        call()
    error = find_brainlab_error(err.value)
    assert isinstance(error, DataError), err.value
    text = str(error)
    assert "\n" not in text and all(n in text for n in names), text
    return text


def nmnist_file(root: Path, digit: int = 1, i: int = 2) -> Path:
    return root / "NMNIST" / "Train" / str(digit) / f"{i:05d}.bin"


def random_bytes(path: Path, n: int = 500) -> None:
    raw = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)
    raw[0::5] = 200  # x far outside the 34x34 sensor
    path.write_bytes(raw.tobytes())


@pytest.fixture
def nmnist(tmp_path: Path) -> Path:
    return make_nmnist(tmp_path / "nmnist", train=3, test=1, events=60)


# --- one line naming the file and the sample -----------------------------------------------------------------
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_an_empty_or_truncated_nmnist_bin_stops_setup(damage: str, nmnist: Path, tmp_path: Path) -> None:
    bad = nmnist_file(nmnist)
    bad.write_bytes(b"" if damage == "empty" else bad.read_bytes()[:-2])
    text = one_line(lambda: datamodule("nmnist", nmnist, tmp_path, "cache=none").setup("fit"), str(bad),
                    "(sample 5)", "data.on_bad_sample=skip")
    assert ("0 bytes" if damage == "empty" else "truncated") in text


@pytest.mark.parametrize("cache", ["none", "memory"])
def test_a_random_bytes_nmnist_bin_is_not_trained_on(cache: str, nmnist: Path, tmp_path: Path) -> None:
    """Its events fall outside the sensor: found where the cache builds, or when read without a cache."""
    bad = nmnist_file(nmnist)
    random_bytes(bad)
    dm = datamodule("nmnist", nmnist, tmp_path, f"cache={cache}", "data.val_fraction=0.01")

    def read_all() -> None:
        dm.setup("fit")
        for _ in dm.train_dataloader():
            pass

    one_line(read_all, str(bad), "(sample 5)", "outside the sensor")


def test_a_garbage_dvs_gesture_npy_stops_setup(tmp_path: Path) -> None:
    root = make_dvs_gesture(tmp_path / "dvs", users=2, events=50)
    bad = root / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "2.npy"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    one_line(lambda: datamodule("dvs_gesture", root, tmp_path, "cache=none").setup("fit"), str(bad),
             "(sample", "not a .npy array")


def test_hdf5_bit_rot_in_ssc_names_the_file_and_sample(tmp_path: Path) -> None:
    root = make_ssc(tmp_path / "ssc", train=3, events=60)
    path = root / "SSC" / "ssc_train.h5"
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 2048] = np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    path.write_bytes(raw)
    one_line(lambda: datamodule("ssc", root, tmp_path, "cache=memory").setup("fit"), str(path), "(sample",
             "cannot be read")


def test_an_ssc_label_outside_num_classes_stops_setup(tmp_path: Path) -> None:
    root = make_ssc(tmp_path / "ssc", train=2, events=40)
    with h5py.File(root / "SSC" / "ssc_valid.h5", "r+") as file:
        file["labels"][1] = 7
    one_line(lambda: datamodule("ssc", root, tmp_path).setup("fit"), "ssc_valid.h5", "(sample 1)",
             "label 7 is outside 0..3 (data.num_classes=4)")


def nab_corpus(tmp_path: Path, rows: int = 40) -> Path:
    stamps = np.datetime64("2015-03-01T00:00:00") + np.arange(rows) * np.timedelta64(5, "m")
    return write_corpus(tmp_path / "nab", {"a/one.csv": (stamps, np.sin(np.arange(rows)))}, {"a/one.csv": [(5, 9)]})


@pytest.mark.parametrize(("value", "what"), [("nan", "not finite"), ("inf", "not finite"), ("abc", "not a number")])
def test_a_bad_nab_value_names_its_line(value: str, what: str, tmp_path: Path) -> None:
    root = nab_corpus(tmp_path)
    path = root / "data" / "a" / "one.csv"
    lines = path.read_text().splitlines()
    lines[11] = lines[11].split(",")[0] + f",{value}"  # line 12 of the file
    path.write_text("\n".join(lines) + "\n")
    one_line(lambda: NABDataModule(root=str(root)).setup("fit"), f"{path} line 12", what,
             "data.on_bad_sample=skip")
    dm = NABDataModule(root=str(root), on_bad_sample="skip")
    dm.setup("fit")
    assert dm.bad_samples == {"rows": 1} and len(dm.streams[0]) == 39
    assert np.isfinite(dm.streams[0].values).all()


def test_a_missing_minari_root_is_not_created(tmp_path: Path) -> None:
    pytest.importorskip("minari")
    from brainlab.data.minari import MinariDataModule

    root = tmp_path / "nowhere" / "minari"
    one_line(lambda: MinariDataModule(dataset_id="cartpole/none-v0", root=str(root)).setup("fit"), str(root))
    assert not (tmp_path / "nowhere").exists()


# --- skip: dropped at setup or cache build, counted, reproducible -------------------------------------------
def skip_fixture(nmnist: Path) -> tuple[Path, Path]:
    empty, noise = nmnist_file(nmnist, 1, 2), nmnist_file(nmnist, 3, 0)
    empty.write_bytes(b"")  # found at setup
    random_bytes(noise)  # found where the cache builds
    return empty, noise


def batches(dm) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in dm.train_dataloader()]


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_skip_drops_bad_samples_at_setup_and_cache_build(cache: str, nmnist: Path, tmp_path: Path) -> None:
    skip_fixture(nmnist)
    extra = [f"cache.root={tmp_path / 'cache'}"] if cache == "disk" else []
    runs = []
    for _ in range(2):  # the second disk run reads the entry the first one built
        dm = datamodule("nmnist", nmnist, tmp_path, f"cache={cache}", *extra, "data.on_bad_sample=skip",
                        "data.val_fraction=0.25")
        dm.setup("fit")
        assert sum(dm.bad_samples.values()) == 2, dm.bad_samples
        assert sum(len(dm.datasets[s]) for s in ("train", "val")) == 12 - 2
        torch.manual_seed(0)
        runs.append(batches(dm))
    for (x1, y1), (x2, y2) in zip(*runs, strict=True):  # same seed, same numbers
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    if cache == "disk":  # an entry built by a skip run leaves samples out: an error run refuses it
        dm = datamodule("nmnist", nmnist, tmp_path, "cache=disk", *extra, "data.val_fraction=0.25")
        one_line(lambda: dm.setup("fit"), "data.on_bad_sample=skip")


def test_skip_is_counted_in_the_run_record(nmnist: Path, tmp_path: Path) -> None:
    from brainlab.train import run

    skip_fixture(nmnist)
    cfg = compose_cfg(tmp_path / "run", [
        "experiment=nmnist_snn", f"data.root={nmnist}", "data.num_classes=4", "data.batch_size=4",
        "data.val_fraction=0.25", "cache=memory", "data.on_bad_sample=skip", "model.net.hidden_dim=8",
        "data.n_time_bins=3", "data.transform.transforms.0.time_window=100000", "trainer.max_epochs=1",
        "callbacks.progress_bar=null", "trainer.enable_model_summary=false", "callbacks.snn_media=null",
        "callbacks.neuromorphic=null", f"paths.data_dir={tmp_path}", "seed=0",
    ])
    run(cfg)
    record = json.loads((tmp_path / "run" / "record" / "run.json").read_text())
    assert sum(record["bad_samples"].values()) == 2, record["bad_samples"]
