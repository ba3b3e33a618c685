"""The encoder of Numenta's NAB detector: a random distributed scalar encoder (RDSE) of the value, a periodic
time-of-day encoder and optional weekend bits, giving each row's active input bits."""

from __future__ import annotations

import functools
import math

import numpy as np

from brainlab.core.errors import ConfigError


@functools.lru_cache(maxsize=8)
def rdse_table(size: int, w: int, n: int, max_overlap: int, seed: int) -> np.ndarray:
    """NuPIC-style RDSE buckets: row i = the bits of bucket i (see `Encoder`), built outward from the centre."""
    rng = np.random.default_rng(seed)
    centre = n // 2
    table = np.zeros((n, w), dtype=np.int64)
    member = np.zeros((n, size), dtype=np.int32)
    table[centre] = rng.choice(size, w, replace=False)
    member[centre, table[centre]] = 1
    built = [centre]
    for idx, prev, drop in [(i, i - 1, 0) for i in range(centre + 1, n)] + [
        (i, i + 1, w - 1) for i in range(centre - 1, -1, -1)
    ]:
        keep = np.delete(table[prev], drop)
        free = np.setdiff1d(np.arange(size), table[prev])
        others = np.array(built)
        dist = np.abs(others - idx)
        allowed = np.where(dist < w, w - dist, max_overlap)
        base = member[others][:, keep].sum(1)
        for bit in rng.permutation(free):
            if ((base + member[others, bit]) <= allowed).all():
                break
        row = np.append(keep, bit) if drop == 0 else np.insert(keep, 0, bit)
        table[idx] = row
        member[idx, row] = 1
        built.append(idx)
    return table


class Encoder:
    """Active input bits per row: RDSE(value) | time of day | weekend, as an int64 array (rows, active bits).

    RDSE as Numenta's RandomDistributedScalarEncoder: bucket `round((x - first value) / resolution)`, clipped
    to `max_buckets` buckets around the first value; neighbouring buckets differ in one bit, buckets `d <
    active_bits` apart share `active_bits - d` bits and any others at most `max_overlap` (a seeded table built
    outward from the centre bucket, each new bit drawn until those overlaps hold). Resolution from the file's
    range as Numenta's NAB detector does: `max(min_resolution, (max - min + 2 * padding) / n_buckets)` with
    padding = 20% of the range (a flat file: range 1). Time of day: a periodic scalar encoder of the hour,
    `time_of_day_bits` wide, radius `time_of_day_radius` hours.
    """

    def __init__(self, size: int = 400, active_bits: int = 21, n_buckets: int = 130, min_resolution: float = 0.001,
                 range_padding: float = 0.2, time_of_day_bits: int = 21, time_of_day_radius: float = 9.49,
                 weekend_bits: int = 0, max_buckets: int = 1000, max_overlap: int = 2, seed: int = 42) -> None:
        if active_bits >= size:
            raise ConfigError(f"model.net.encoder.active_bits ({active_bits}) must be < size ({size})")
        self.size, self.active_bits, self.n_buckets = size, active_bits, n_buckets
        self.min_resolution, self.range_padding = min_resolution, range_padding
        self.tod_bits = time_of_day_bits
        self.tod_size = int(math.ceil(time_of_day_bits * 24.0 / time_of_day_radius)) if time_of_day_bits else 0
        self.weekend_bits = weekend_bits
        self.max_buckets, self.max_overlap, self.seed = max_buckets, max_overlap, seed
        self._table: np.ndarray | None = None

    @property
    def width(self) -> int:
        return self.size + self.tod_size + 2 * self.weekend_bits

    def resolution(self, input_min: float, input_max: float) -> float:
        pad = abs(input_max - input_min) * self.range_padding
        span = (input_max + pad) - (input_min - pad)
        return max(self.min_resolution, (span if span > 0 else 1.0) / self.n_buckets)

    @property
    def table(self) -> np.ndarray:
        """(max_buckets, active_bits) RDSE bucket -> bits, built once per parameter set."""
        if self._table is None:
            self._table = rdse_table(self.size, self.active_bits, self.max_buckets, self.max_overlap, self.seed)
        return self._table

    def encode(self, values: np.ndarray, timestamps: np.ndarray, resolution: float, offset: float) -> np.ndarray:
        """`timestamps`: int64 seconds since the epoch. Returns (rows, active bits) int64 indices."""
        bucket = np.round((np.asarray(values, dtype=np.float64) - offset) / resolution)
        half = self.max_buckets // 2
        bucket = np.clip(bucket, -half, self.max_buckets - 1 - half).astype(np.int64) + half
        parts = [self.table[bucket]]
        t = np.asarray(timestamps, dtype=np.int64)
        if self.tod_bits:
            hours = (t % 86400) / 3600.0
            centre = np.floor(hours / 24.0 * self.tod_size).astype(np.int64)
            tod = (centre[:, None] + np.arange(self.tod_bits) - self.tod_bits // 2) % self.tod_size
            parts.append(self.size + tod)
        if self.weekend_bits:
            weekend = ((t // 86400 + 3) % 7 >= 5).astype(np.int64)  # 1970-01-01 was a Thursday
            parts.append(
                self.size + self.tod_size + weekend[:, None] * self.weekend_bits + np.arange(self.weekend_bits)
            )
        return np.concatenate(parts, axis=1)
