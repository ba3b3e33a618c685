"""NuPIC's backtracking temporal memory (`model.net.tm.algorithm=backtracking`): sequence learning, a planted
break, backtracking inference, potential-synapse column predictions, lockstep batching and bad settings."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.htm import SMALL_OVERRIDES, stream, with_tm
from helpers.nab_corpus import write_corpus
from hydra.utils import get_class

from brainlab.core.aliases import current_target
from brainlab.core.errors import ConfigError
from brainlab.nets.htm import ALGORITHMS, HTM, TM_ALGORITHMS, BacktrackingTemporalMemory, TMParams
from brainlab.nets.htm.backtracking import _Stream
from brainlab.train import run

SMALL = with_tm(algorithm="backtracking")


def small_tm(**overrides: object) -> BacktrackingTemporalMemory:
    return BacktrackingTemporalMemory(TMParams(columns=64, cells_per_column=4, **(SMALL["tm"] | overrides)))


def step(tm: BacktrackingTemporalMemory, cols: list[int], learn: bool = True) -> float:
    return float(tm.compute(torch.tensor(sorted(cols)), 1, learn)[0])


def test_learns_a_repeating_sequence_and_flags_a_break() -> None:
    pattern = np.array([0, 5, 2, 8, 3, 9, 1, 7], dtype=np.float64) * 10
    broken = np.tile(pattern, 30)
    broken[200:204] = pattern[[4, 0, 6, 2]]  # the sequence breaks at row 200
    net = HTM(**SMALL)
    net.reset(0.0, 90.0, broken[0])
    raw = net(*stream(broken))
    assert raw[:8].mean() > 0.9  # nothing predicted at first
    assert raw[120:200].mean() < 0.1  # learned
    assert raw[200:204].mean() > 0.5  # the break is not predicted: the score spikes
    assert raw[220:].mean() < 0.1  # and the sequence is recalled after it
    stream0 = net.tm.streams[0]
    # the learning state holds exactly one cell per active column
    assert stream0.lrn_active.reshape(256, 8).sum(1).max() == 1
    assert stream0.lrn_active.sum() == 10


def sequence(seed: int, n: int, width: int = 6, columns: int = 64) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(columns, width, replace=False).tolist()) for _ in range(n)]


def test_backtracking_locks_on_to_a_sequence_entered_in_the_middle() -> None:
    """A learned sequence entered at its 4th element after noise: the backtracking TM predicts the 5th
    element's columns at once (it replays recent inputs from start cells and locks on), where bursting from
    the noise alone would predict nothing."""
    seq, noise = sequence(0, 8), sequence(1, 3)
    scores = {}
    for backtrack in (10, 0):
        tm = small_tm(activation_threshold=4, min_threshold=3, new_synapse_count=6, max_synapses_per_segment=12,
                      max_inf_backtrack=backtrack)
        for _ in range(40):
            for cols in seq:
                step(tm, cols)
        for cols in noise:
            step(tm, cols)
        scores[backtrack] = [step(tm, cols, learn=False) for cols in seq[3:6]]
    assert scores[10] == [1.0, 0.0, 0.0]  # the entry is a surprise, then it locks on
    assert scores[0][1:] == [1.0, 1.0]  # without backtracking it stays lost


def test_columns_count_as_predicted_from_synapses_below_the_connected_permanence() -> None:
    tm = small_tm()
    s: _Stream = tm.streams[0]
    s.avg_density = 6.0
    active_cols = np.array([1, 2, 3, 4, 5, 6])
    seg = s._new_segment(10 * 4 + 2, sequence=True)  # a segment on cell 2 of column 10
    s._add_synapses(seg, (active_cols * 4).astype(np.int32), perm=0.21)  # start cells, not connected (0.5)
    s._infer_phase1(active_cols, use_start_cells=True)
    s._infer_phase2()
    assert s.col_conf[10] and s.col_conf.sum() == 1  # column 10 is predicted for the anomaly score ...
    assert s.inf_pred.sum() == 0  # ... but no cell is predictive (no connected synapses)
    s.seg_perm[seg, :6] = 0.6
    s._infer_phase2()
    assert s.inf_pred[10 * 4 + 2] == 1 and s.inf_pred.sum() == 1


def test_segment_updates_reinforce_weaken_and_free_the_weakest() -> None:
    tm = small_tm(max_synapses_per_segment=4, new_synapse_count=2)
    s: _Stream = tm.streams[0]
    seg = s._new_segment(5, sequence=True)
    s._add_synapses(seg, np.array([8, 9, 10, 11], np.int32), perm=0.3)
    s.seg_perm[seg, 2] = 0.15
    active = np.array([True, False, False, False])
    reached0 = s._adapt(seg, 5, active, np.array([20], np.int32))
    assert not reached0
    pre = {int(c): round(float(p), 4) for c, p in zip(s.seg_pre[seg], s.seg_perm[seg], strict=True) if c >= 0}
    # 8 reinforced, 9 and 11 weakened, 10 (weakest inactive) freed for the new synapse to 20
    assert pre == {8: 0.4, 9: 0.2, 11: 0.2, 20: 0.21}
    segs, act_all, _ = s._activity(np.isin(np.arange(s.N), [8, 20, 10]).astype(np.uint8))
    assert segs.tolist() == [seg] and act_all.tolist() == [2]  # the presynaptic index follows the changes
    s.seg_perm[seg, :] = np.where(s.seg_pre[seg] >= 0, 0.05, 0)
    assert s._adapt(seg, 5, np.zeros(4, bool), np.zeros(0, np.int32))  # all decremented to zero
    s._trim(seg, int(s.seg_uid[seg]))
    assert s.n_segments == 0 and s.n_synapses == 0 and (s.head == -1).all()


def test_batched_streams_equal_single_stream_runs() -> None:
    rng = np.random.default_rng(0)
    a = np.tile([0.0, 3, 9, 4, 7], 30) + rng.normal(0, 0.3, 150)
    b = np.cumsum(rng.normal(0, 1, 90))
    t = 1_420_070_400 + 600 * np.arange(150)
    singles = []
    for v in (a, b):
        net = HTM(**SMALL)
        net.reset(v.min(), v.max(), v[0])
        singles.append(net(v, t[: len(v)]))
    net = HTM(**copy.deepcopy(SMALL))
    net.reset([a.min(), b.min()], [a.max(), b.max()], [a[0], b[0]])
    values = np.zeros((2, 150))
    values[0], values[1, :90] = a, b
    batched = net(values, np.stack([t, t]), lengths=np.array([150, 90]))
    assert np.array_equal(batched[0], singles[0]) and np.array_equal(batched[1, :90], singles[1])
    assert singles[0][-30:].mean() < singles[0][:10].mean()


@pytest.mark.parametrize(
    ("tm", "message"),
    [
        ({"algorithm": "nupic"}, "model.net.tm.algorithm"),
        ({"algorithm": "backtracking", "predicted_segment_decrement": 0.01}, "predicted_segment_decrement"),
        ({"algorithm": "backtracking", "pam_length": 0}, "pam_length"),
        ({"algorithm": "backtracking", "max_seq_length": -1}, "max_seq_length"),
        ({"pam_length": 3}, "model.net.tm.pam_length is read by algorithm=backtracking only"),
        ({"min_threshold": 14}, "model.net.tm.min_threshold"),
        ({"algorithm": "backtracking", "new_synapse_count": 40}, "model.net.tm.new_synapse_count"),
        ({"max_synapses_per_segment": 300, "new_synapse_count": 20}, "max_synapses_per_segment .* <= 255"),
        ({"initial_permanence": 1.5}, "model.net.tm.initial_permanence must be in"),
        ({"activation_treshold": 13}, "model.net.tm.activation_treshold is not a temporal-memory setting"),
    ],
)
def test_bad_settings_are_refused_when_the_net_is_built(tm: dict, message: str) -> None:
    """Both temporal memories share one TMParams check: a one-line ConfigError naming the key, at build time."""
    with pytest.raises(ConfigError, match=message) as refused:
        HTM(columns=64, cells_per_column=4, tm=tm, sp={"active_columns": 4})
    assert "\n" not in str(refused.value)


def test_nab_htm_with_the_backtracking_tm_end_to_end(tmp_path: Path, make_cfg: Callable[..., Any]) -> None:
    n = 300
    t = np.datetime64("2015-01-01T00:00:00") + np.arange(n) * np.timedelta64(300, "s")
    a = np.tile(np.array([0.0, 4, 8, 2, 6]), n // 5)
    a[250:255] = 50.0
    corpus = write_corpus(tmp_path / "nab", {"realA/a.csv": (t, a)}, windows={"realA/a.csv": [(240, 270)]})
    out = tmp_path / "run"
    cfg = make_cfg(
        "experiment=nab_htm",  # its default model: htm_backtracking
        f"data.root={corpus}",
        "data.rows_per_step=100",
        *SMALL_OVERRIDES,
        "model.net.tm.max_synapses_per_segment=16",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        tiny=False,
    )
    metrics = run(cfg)
    assert np.isfinite(metrics["test/nab_standard"])
    written = np.loadtxt(out / "nab_results" / "htm" / "realA" / "htm_a.csv", delimiter=",", skiprows=1,
                         usecols=(1, 2))
    assert written.shape == (n, 2) and np.allclose(written[:, 0], a)
    rows = {r["id"]: r for r in json.loads((out / "targets.json").read_text())}
    assert rows["phase3_htm"]["status"] == "not measured"  # a fixture corpus, not NAB


def test_production_shape_is_instantiable() -> None:
    net = HTM(columns=16384, cells_per_column=64, tm={"algorithm": "backtracking"})
    net.reset(0.0, 1.0, 0.0)
    raw = net(*stream([0.0, 0.5, 1.0]))
    assert net.tm.streams[0].N == 16384 * 64 and raw[0] == 1.0 and net.tm.n_segments > 0


def test_every_algorithm_has_a_temporal_memory_and_the_old_module_path_resolves() -> None:
    """`model.net.tm.algorithm` choices match the TMs; a saved `brainlab.nets.backtracking_tm` target still loads."""
    assert set(TM_ALGORITHMS) == set(ALGORITHMS)
    old = "brainlab.nets.backtracking_tm.BacktrackingTemporalMemory"
    assert get_class(current_target(old)) is BacktrackingTemporalMemory
