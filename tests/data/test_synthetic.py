"""The embedded synthetic event set: tonic's format, seeded, class-dependent, binned by tonic's ToFrame."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.transforms as T

from brainlab.core.errors import ConfigError
from brainlab.data.synthetic import SyntheticEvents


def test_events_are_in_tonic_format_and_in_range() -> None:
    ds = SyntheticEvents(n_classes=3, n_channels=20, duration_us=100_000, samples_per_class=2)
    events, target = ds[4]
    assert events.dtype.names == ("t", "x", "p")
    assert ds.sensor_size == (20, 1, 1)
    assert target == 4 % 3
    assert len(events) > 0
    assert np.all(np.diff(events["t"]) >= 0), "events are sorted in time"
    assert events["t"].min() >= 0 and events["t"].max() < 100_000
    assert events["x"].min() >= 0 and events["x"].max() < 20


def test_samples_are_seeded_and_splits_differ() -> None:
    a = SyntheticEvents(seed=3, samples_per_class=2)
    b = SyntheticEvents(seed=3, samples_per_class=2)
    test = SyntheticEvents(seed=3, split="test", samples_per_class=2)
    np.testing.assert_array_equal(a[5][0], b[5][0])
    assert not np.array_equal(a[5][0], test[5][0])
    assert not np.array_equal(a[5][0], SyntheticEvents(seed=4, samples_per_class=2)[5][0])


def test_classes_differ_more_than_samples_of_one_class() -> None:
    ds = SyntheticEvents(n_classes=2, n_channels=32, duration_us=200_000, samples_per_class=20, seed=1)
    to_frame = T.ToFrame(sensor_size=ds.sensor_size, time_window=20_000, start_time=0, end_time=200_000)
    means = []
    for cls in range(2):
        frames = np.stack([to_frame(ds[i][0]) for i in range(cls, 40, 2)]).astype(float)
        means.append(frames.mean(axis=0))
    within = np.abs(to_frame(ds[0][0]) - means[0]).mean()
    between = np.abs(means[0] - means[1]).mean()
    assert between > 0.2 * within and between > 0


def test_to_frame_gives_a_fixed_number_of_bins() -> None:
    ds = SyntheticEvents(n_channels=8, duration_us=50_000, samples_per_class=1)
    to_frame = T.ToFrame(sensor_size=ds.sensor_size, time_window=10_000, start_time=0, end_time=50_000)
    for i in range(len(ds)):
        events = ds[i][0]
        frames = to_frame(events)
        assert frames.shape == (5, 1, 8)
        assert frames.sum() == len(events), "every event lands in one bin"


@pytest.mark.parametrize(("key", "value"), [("n_channels", 0), ("duration_us", -1), ("samples_per_class", 0)])
def test_bad_sizes_are_refused(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"data.{key} must be a positive integer"):
        SyntheticEvents(**{key: value})
