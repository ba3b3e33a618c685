"""The HTM net of Numenta's NAB detector: encoder -> spatial pooler -> temporal memory -> raw anomaly score,
over B independent streams in lockstep; `final_scores` turns raw scores into the detector's output."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from brainlab.nets.htm.backtracking import BacktrackingTemporalMemory
from brainlab.nets.htm.encoder import Encoder
from brainlab.nets.htm.likelihood import AnomalyLikelihood, spatial_anomaly
from brainlab.nets.htm.params import TMParams
from brainlab.nets.htm.spatial_pooler import SpatialPooler
from brainlab.nets.htm.temporal_memory import TemporalMemory

#: model.net.tm.algorithm -> its temporal memory (the names and what they mean: `params.ALGORITHMS`)
TM_ALGORITHMS = {"bami": TemporalMemory, "backtracking": BacktrackingTemporalMemory}


class HTM(nn.Module):
    """Encoder -> spatial pooler -> temporal memory over B independent streams run in lockstep.

    `reset(mins, maxs, firsts)` starts B fresh, identically seeded detectors (NAB runs one per file); then
    `forward(values (B, T), timestamps (B, T), lengths)` streams the next T rows of each and returns their raw
    anomaly scores. Streams must be ordered by length (longest first), so the streams still running at any
    step are a prefix and finished ones cost nothing. One stream: pass scalars to reset and 1-D arrays.
    """

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        sp: dict[str, Any] | None = None,
        tm: dict[str, Any] | None = None,
        columns: int = 2048,
        cells_per_column: int = 32,
        likelihood: dict[str, Any] | None = None,
        spatial_tolerance: float | None = 0.05,
        use_likelihood: bool = True,
    ) -> None:
        super().__init__()
        self.tm_params = TMParams.from_config(columns, cells_per_column, tm)
        self.encoder_cfg, self.sp_cfg = dict(encoder or {}), dict(sp or {})
        self.likelihood_cfg = dict(likelihood or {})
        self.columns, self.cells_per_column = columns, cells_per_column
        self.spatial_tolerance, self.use_likelihood = spatial_tolerance, use_likelihood
        self.encoder = Encoder(**self.encoder_cfg)
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)
        self.sp: SpatialPooler | None = None
        self.tm: TemporalMemory | BacktrackingTemporalMemory | None = None
        self.resolution = np.ones(1)
        self.offset = np.zeros(1)

    def reset(self, input_min: Any, input_max: Any, first_value: Any) -> None:
        """Fresh detectors for a new group of streams (one value per stream, or scalars for one stream)."""
        lo, hi = np.atleast_1d(np.asarray(input_min, float)), np.atleast_1d(np.asarray(input_max, float))
        first = np.atleast_1d(np.asarray(first_value, float))
        dev = self._device_anchor.device
        self.sp = SpatialPooler(self.encoder.width, self.columns, batch=len(lo), device=dev, **self.sp_cfg)
        self.tm = TM_ALGORITHMS[self.tm_params.algorithm](self.tm_params, batch=len(lo), device=dev)
        self.resolution = np.array([self.encoder.resolution(a, b) for a, b in zip(lo, hi, strict=True)])
        self.offset = first

    @torch.no_grad()
    def forward(
        self, values: np.ndarray, timestamps: np.ndarray, learn: bool = True, lengths: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw anomaly scores (B, T) of the next rows of each stream (NaN past a stream's `lengths`)."""
        if self.sp is None or self.tm is None:
            raise RuntimeError("HTM.reset(...) must be called at the start of a stream")
        values, timestamps = np.asarray(values, dtype=np.float64), np.asarray(timestamps, dtype=np.int64)
        single = values.ndim == 1
        if single:
            values, timestamps = values[None], timestamps[None]
        n, steps = values.shape
        lengths = np.full(n, steps) if lengths is None else np.asarray(lengths, dtype=np.int64)
        if n > self.sp.B or (np.diff(lengths) > 0).any():
            raise ValueError(f"HTM got {n} streams (reset for {self.sp.B}) or lengths not longest-first: {lengths}")
        dev = self._device_anchor.device
        bits = np.stack(
            [
                self.encoder.encode(
                    np.where(np.arange(steps) < lengths[b], values[b], self.offset[b]),
                    timestamps[b],
                    self.resolution[b],
                    self.offset[b],
                )
                for b in range(n)
            ]
        )
        bits_t = torch.from_numpy(bits).to(dev)
        out = torch.full((n, steps), float("nan"), device=dev)
        live = (lengths[None, :] > np.arange(steps)[:, None]).sum(1)
        for t in range(steps):
            m = int(live[t])
            if m == 0:
                break
            self.tm.keep_streams(m)
            active = self.sp.compute(bits_t[:m, t], learn)
            cols = torch.nonzero(active.view(-1)).squeeze(1)
            out[:m, t] = self.tm.compute(cols, m, learn)
        raw = out.cpu().numpy().astype(np.float64)
        return raw[0] if single else raw

    def final_scores(self, raw: np.ndarray, values: np.ndarray, probation: int) -> np.ndarray:
        """NAB detector output: log anomaly likelihood (or raw), 1.0 on a spatial anomaly."""
        if self.use_likelihood:
            learning = probation // 2
            lik = AnomalyLikelihood(learning, probation - learning, **self.likelihood_cfg)(raw, values)
            score = AnomalyLikelihood.log_score(lik)
        else:
            score = np.asarray(raw, dtype=np.float64).copy()
        if self.spatial_tolerance is not None:
            score[spatial_anomaly(values, self.spatial_tolerance)] = 1.0
        return score
