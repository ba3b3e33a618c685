"""What NAB's data and NAB's scoring share: cost profiles, the probationary period and anomaly windows as rows.

`brainlab.data.nab` builds each file's windows with these; `brainlab.metrics.nab` scores against them. Both
follow the Numenta Anomaly Benchmark's published definition (Lavin & Ahmad 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from brainlab.core.errors import DataError

#: NAB's cost profiles (`config/profiles.json` of the NAB repository, `CostMatrix` of each)
PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}
PROBATION_PERCENT = 0.15
WINDOW_PERCENT = 0.10


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """NAB's probationary period: `min(floor(percent * rows), percent * 5000)` rows."""
    return int(min(math.floor(percent * rows), percent * 5000))


def windows_from_labels(
    n_rows: int, labels: Sequence[int], percent: float = WINDOW_PERCENT, probation_percent: float = PROBATION_PERCENT
) -> list[tuple[int, int]]:
    """NAB's windows for point labels (row indices): width `int(percent * rows / n_labels)` centred on each
    label, clipped to the file, overlapping windows merged, windows touching the probationary period dropped."""
    if not labels:
        return []
    width = int(percent * n_rows / len(labels))
    windows: list[list[int]] = []
    for label in sorted(labels):
        left, right = max(0, label - width // 2), min(n_rows - 1, label + width // 2)
        if windows and left <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], right)
        else:
            windows.append([left, right])
    probation = probation_length(n_rows, probation_percent)
    return [(a, b) for a, b in windows if a >= probation]


def window_rows(timestamps: np.ndarray, windows: Sequence[Sequence[str]], name: str = "") -> list[tuple[int, int]]:
    """Row indices (left, right) of NAB windows given as timestamp pairs (they are timestamps of the file)."""
    stamps = np.asarray(timestamps).astype("datetime64[us]")
    out = []
    for start, end in windows:
        pair = np.array([start, end], dtype="datetime64[us]")
        idx = np.searchsorted(stamps, pair)
        if idx[0] >= len(stamps) or idx[1] >= len(stamps) or stamps[idx[0]] != pair[0] or stamps[idx[1]] != pair[1]:
            raise DataError(f"NAB window {start} .. {end} of {name or 'a file'} is not on the file's timestamps")
        out.append((int(idx[0]), int(idx[1])))
    return out
