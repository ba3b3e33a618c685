"""Lockstep batching of HTM streams: a batch of files gives exactly what each file gives alone."""

from __future__ import annotations

import numpy as np

from brainlab.nets.htm import HTM, counter_uniform

SMALL = {
    "columns": 128,
    "cells_per_column": 6,
    "sp": {"active_columns": 8, "seed": 3},
    "tm": {
        "activation_threshold": 4,
        "min_threshold": 3,
        "new_synapse_count": 6,
        "max_synapses_per_segment": 8,
        "max_segments_per_cell": 4,
        "predicted_segment_decrement": 0.01,
        "seed": 4,
    },
    "encoder": {"size": 120, "active_bits": 9, "time_of_day_bits": 5, "time_of_day_radius": 6.0, "max_buckets": 200},
}


def test_batched_streams_equal_single_stream_runs() -> None:
    rng = np.random.default_rng(0)
    n_a, n_b = 200, 120  # different lengths: the shorter stream stops mid-chunk
    a = np.tile([0.0, 3, 9, 4, 7], n_a // 5) + rng.normal(0, 0.3, n_a)
    b = np.cumsum(rng.normal(0, 1, n_b))
    t = 1_420_070_400 + 600 * np.arange(n_a)
    singles = []
    for v in (a, b):
        net = HTM(**SMALL)
        net.reset(v.min(), v.max(), v[0])
        singles.append(
            np.concatenate([net(v[s : s + 70], t[s : s + len(v[s : s + 70])]) for s in range(0, len(v), 70)])
        )
    net = HTM(**SMALL)
    net.reset([a.min(), b.min()], [a.max(), b.max()], [a[0], b[0]])
    values = np.zeros((2, n_a))
    values[0], values[1, :n_b] = a, b
    stamps = np.stack([t, t])
    chunks = []
    for s in range(0, n_a, 70):
        lengths = np.clip(np.array([n_a, n_b]) - s, 0, 70)
        w = min(70, n_a - s)
        chunks.append(net(values[:, s : s + w], stamps[:, s : s + w], lengths=lengths))
    batched = np.concatenate(chunks, axis=1)
    assert np.array_equal(batched[0], singles[0])
    assert np.array_equal(batched[1, :n_b], singles[1]) and np.isnan(batched[1, n_b:]).all()
    assert singles[0][-50:].mean() < singles[0][:20].mean()  # it learned something, so the comparison has teeth
    assert net.tm.n_segments > 0


def test_counter_uniform_is_keyed_not_sequential() -> None:
    import torch

    keys = torch.arange(10_000)
    u = counter_uniform(7, 1, 5, keys)
    assert torch.equal(u[1234:1240], counter_uniform(7, 1, 5, keys[1234:1240]))  # a draw depends on its key only
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0 and abs(float(u.mean()) - 0.5) < 0.02
    assert not torch.equal(u, counter_uniform(7, 2, 5, keys))
