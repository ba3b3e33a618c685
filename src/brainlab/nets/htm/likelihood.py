"""NAB's scoring of raw anomaly scores: Numenta's anomaly likelihood and the spatial-anomaly override."""

from __future__ import annotations

import math

import numpy as np
import torch


class AnomalyLikelihood:
    """Numenta's anomaly likelihood over a whole file's raw scores (vectorised).

    Rows before `learning_period + estimation_samples` get 0.5. From then on, every `reestimation_period`
    rows, a normal distribution is fitted to the 10-row moving average of the raw scores of the last
    `historic_window` rows (skipping the learning period while it is in the window; mean >= 0.03, variance
    >= 0.0003; a constant input gives the null distribution). The likelihood is 1 - the tail probability of
    the current moving average; a second red value (tail <= 1e-5) in a row is softened to 1e-3 tail.
    """

    def __init__(
        self,
        learning_period: int,
        estimation_samples: int,
        historic_window: int = 8640,
        reestimation_period: int = 100,
        averaging_window: int = 10,
    ) -> None:
        self.learning, self.estimation = learning_period, estimation_samples
        self.window, self.period, self.avg = historic_window, reestimation_period, averaging_window

    @staticmethod
    def tail(x: np.ndarray, mean: float, std: float) -> np.ndarray:
        z = torch.from_numpy(np.abs(np.asarray(x, dtype=np.float64) - mean) / std)
        return 0.5 * torch.special.erfc(z / 1.4142).numpy()

    def _moving_average(self, raw: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(raw)])
        i = np.arange(1, len(raw) + 1)
        lo = np.maximum(0, i - self.avg)
        return (c[i] - c[lo]) / (i - lo)

    def estimate(self, raw: np.ndarray, values: np.ndarray, i: int) -> tuple[float, float]:
        lo = max(0, i - self.window)
        skip = min(i, max(0, self.learning - max(0, i - self.window)))
        hist = self._moving_average(raw[lo:i])[skip:]
        vals = values[lo:i][skip:]
        if hist.size == 0 or (vals.size and np.var(vals) < 1.5e-5):
            return 0.5, 1e6  # Numenta's null distribution
        mean, var = max(float(hist.mean()), 0.03), max(float(hist.var()), 0.0003)
        return mean, math.sqrt(var)

    def __call__(self, raw: np.ndarray, values: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        n = len(raw)
        out = np.full(n, 0.5)
        start = self.learning + self.estimation
        if start >= n:
            return out
        avg = self._moving_average(raw)
        prev = np.concatenate([[avg[0]], avg[:-1]])
        tails, prev_tails = np.empty(n), np.empty(n)
        cuts = [start] + [b for b in range((start // self.period + 1) * self.period, n, self.period)] + [n]
        for a, b in zip(cuts[:-1], cuts[1:], strict=False):
            mean, std = self.estimate(raw, values, a)
            tails[a:b] = self.tail(avg[a:b], mean, std)
            prev_tails[a:b] = self.tail(prev[a:b], mean, std)
        red = 1e-5
        soft = (tails <= red) & (prev_tails <= red)
        tails = np.where(soft, 1e-3, tails)
        out[start:] = 1.0 - tails[start:]
        return out

    @staticmethod
    def log_score(likelihood: np.ndarray) -> np.ndarray:
        """Numenta's log scaling: log(1.0000000001 - L) / log(1e-10), in [0, 1]."""
        return np.log(1.0000000001 - np.asarray(likelihood)) / math.log(1.0 - 0.9999999999)


def spatial_anomaly(values: np.ndarray, tolerance: float = 0.05) -> np.ndarray:
    """Numenta's NAB detector override: a value outside the range seen so far (+- tolerance x range)."""
    v = np.asarray(values, dtype=np.float64)
    lo = np.minimum.accumulate(v)
    hi = np.maximum.accumulate(v)
    lo_prev, hi_prev = np.concatenate([[v[0]], lo[:-1]]), np.concatenate([[v[0]], hi[:-1]])
    tol = (hi_prev - lo_prev) * tolerance
    out = ((v > hi_prev + tol) | (v < lo_prev - tol)) & (hi_prev != lo_prev)
    out[0] = False
    return out
