"""Transforms that do not fit the data are refused at setup with one line naming the key to change."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tonic
from helpers.config import compose_cfg
from helpers.events import balanced, make_shd, write_hsd
from hydra.utils import instantiate

from brainlab.core.errors import ConfigError, DataError, find_brainlab_error  # noqa: E402
from brainlab.data.events import FixedTimeBins, frames_made  # noqa: E402

# (dataset, overrides, what the one-line message must say); the root is empty: checked before any file is read
BAD = [
    ("ssc", ["data.transform.transforms.0.spatial_factor=0.2"],
     r"data.transform.transforms.2.sensor_size=\[100, 1, 1\] is smaller .*\[140, 1, 1\].*data.n_channels"),
    ("ssc", ["data.n_channels=50"], r"sensor_size=\[50, 1, 1\] .*\[100, 1, 1\].*spatial_factor"),
    ("ssc", ["data.n_time_bins=200"], r"data.n_time_bins=200 .* 250 frames .*set data.n_time_bins=250"),
    ("ssc", ["data.transform.transforms.2.time_window=5000"], r"set data.n_time_bins=200"),
    ("shd", ["data.n_channels=600"], r"data.transform.transforms.1.sensor_size=\[600, 1, 1\].*\[700, 1, 1\]"),
    ("shd", ["data.transform.transforms.1.end_time=500000"], r"data.n_time_bins=100 .*set data.n_time_bins=50"),
    ("nmnist", ["data.transform.transforms.0.sensor_size=[30,34,2]"], r"transforms.0.sensor_size.*\[34, 34, 2\]"),
    ("nmnist", ["data.transform.transforms.0.sensor_size=[34,34,1]"], r"\[34, 34, 1\] is smaller.*\[34, 34, 2\]"),
    ("nmnist", ["data.n_time_bins=20"], r"set data.n_time_bins=30"),
    ("dvs_gesture", ["data.spatial_factor=0.5", "data.frame_size=64",
                     "data.transform.transforms.0.spatial_factor=0.6"], r"\[64, 64, 2\] is smaller .*\[77, 77, 2\]"),
    ("dvs_gesture", ["data.spatial_factor=0.25", "data.frame_size=64"], r"data.frame_size=64 .*set data.frame_size=32"),
    ("dvs_gesture", ["data.transform.transforms.1.time_window=100000"], r"set data.n_time_bins=30"),
    ("synthetic", ["data.duration_us=300000"], r"data.n_time_bins=50 .*set data.n_time_bins=30"),
]


def datamodule(tmp_path: Path, name: str, *overrides: str):
    cfg = compose_cfg(tmp_path / "run", [f"data={name}", "data.batch_size=2", *(
        [f"data.root={tmp_path / 'empty'}"] if name != "synthetic" else []), *overrides])
    return instantiate(cfg.data, _convert_="all")


@pytest.mark.parametrize(("name", "overrides", "match"), BAD, ids=[f"{b[0]}-{b[1][-1]}" for b in BAD])
def test_a_transform_that_does_not_fit_is_one_config_error(name, overrides, match, tmp_path: Path) -> None:
    with pytest.raises(Exception) as err:  # noqa: PT011 - instantiate may wrap it: unwrapped below
        datamodule(tmp_path, name, *overrides).setup("fit")
    error = find_brainlab_error(err.value)
    assert isinstance(error, ConfigError), err.value
    assert re.search(match, str(error)) and "\n" not in str(error), str(error)


@pytest.mark.parametrize("name", ["ssc", "shd", "nmnist", "dvs_gesture", "synthetic"])
def test_the_shipped_transforms_fit(name: str, tmp_path: Path) -> None:
    datamodule(tmp_path, name).check_config()
    if name == "dvs_gesture":
        datamodule(tmp_path, name, "data.spatial_factor=0.25", "data.frame_size=32").check_config()


def test_events_outside_the_sensor_are_one_data_error_not_an_index_error(tmp_path: Path) -> None:
    """A file whose units exceed the 700 channels stops setup with one line naming the file and the sample (any
    cache), before training."""
    root = make_shd(tmp_path / "shd", train=2, test=1)
    write_hsd(root / "SHD" / "shd_train.h5", balanced(2, 4), 4, n_channels=760, seed=3)
    for cache in ("none", "memory"):
        dm = datamodule(tmp_path, "shd", f"data.root={root}", "data.num_classes=4", f"cache={cache}")
        with pytest.raises(DataError, match=r"shd_train.h5 \(sample 0\): x spans 0..7\d\d, outside the sensor") as err:
            dm.setup("fit")
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(("window", "incomplete", "start", "end", "expected"), [
    (4000, True, 0, 1_000_000, 250), (4000, False, 0, 1_000_000, 250), (3000, True, 0, 1_000_000, 334),
    (3000, False, 0, 1_000_000, 333), (10_000, False, 5000, 100_000, 9), (10_000, True, 5000, 100_000, 10),
])
def test_frame_count_by_hand(window, incomplete, start, end, expected) -> None:
    """ToFrame's count, worked out by hand, is what tonic makes from events spanning start..end."""
    to_frame = tonic.transforms.ToFrame(sensor_size=(4, 1, 1), time_window=window, include_incomplete=incomplete,
                                        start_time=start, end_time=end)
    assert frames_made(to_frame) == expected
    events = np.zeros(3, dtype=tonic.datasets.SSC.dtype)
    events["t"], events["x"], events["p"] = [start, (start + end) // 2, end - 1], [0, 1, 3], 0
    assert to_frame(events).shape[0] == expected


def test_an_empty_sample_pads_to_zeros_of_the_dataset_shape() -> None:
    """tonic returns (1, P, W, H) zeros for a sample without events; it becomes all-zero (T, *input_shape)."""
    to_frame = tonic.transforms.ToFrame(sensor_size=(100, 1, 1), time_window=4000, start_time=0, end_time=1e6)
    empty = to_frame(np.zeros(0, dtype=tonic.datasets.SSC.dtype))
    frames = FixedTimeBins(250, (1, 100))(empty)
    assert frames.shape == (250, 1, 100) and frames.dtype == np.float32 and not frames.any()
