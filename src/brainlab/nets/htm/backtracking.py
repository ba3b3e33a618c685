"""NuPIC's older temporal memory with backtracking (`BacktrackingTM`, the `numenta` detector of NAB), written
from its published algorithm description for brainlab's HTM (`model.net.tm.algorithm=backtracking`).

What differs from the BAMI temporal memory (`temporal_memory.py`):
- Two cell states run side by side. The *inference* state bursts unpredicted columns; when fewer than half the
  active columns were predicted, or the predictions that follow cover fewer than half the usual number of
  columns, it *backtracks*: it replays the last `max_inf_backtrack` inputs from start cells (cell 0 of each
  column), taking the earliest start from which every replayed step stays in sequence.
- The *learning* state holds one cell per column. An unpredicted column activates the cell whose sequence
  segment best matches the previous learning cells, or a new segment on a random cell (never cell 0). After
  `pam_length` steps out of sequence, or `max_seq_length` steps in one, learning starts over, first trying to
  lock on by replaying the last `max_lrn_backtrack` inputs.
- Segments predicted by the learning state queue an update (reinforce the active synapses, grow new ones up to
  `new_synapse_count`) that is applied only if the cell's column becomes active at the next step.
- A column counts as predicted for the raw anomaly score when one of its segments has at least
  `activation_threshold` active synapses of any permanence (NuPIC's column confidence > 0).

One `_Stream` is one detector. `BacktrackingTemporalMemory` runs B of them side by side behind the interface of
`TemporalMemory` (global column ids `b * C + c` in, raw anomaly score per stream out). Synapses live in
fixed-width segment rows; a doubly linked presynaptic index (cell -> synapse nodes, numba) makes each activity
count touch only the synapses of the active cells.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from brainlab.nets.htm.params import TMParams

# Segment duty-cycle tiers and moving-average rates (positive activations per learning step).
DUTY_TIERS = (0, 100, 320, 1000, 3200, 10000, 32000, 100000, 320000)
DUTY_ALPHAS = (0.0, 0.0032, 0.0010, 0.00032, 0.00010, 0.000032, 0.00001, 0.0000032, 0.0000010)
TRIM_BELOW = 0.00001  # synapses decremented to (near) zero are removed


@nb.njit(cache=True)
def _activity(cells, head, node_next, node_seg, node_slot, seg_perm, connected, scratch_all, scratch_conn):
    """(segments touched, active synapses of any permanence, active connected synapses) for active `cells`."""
    touched = np.empty(64, np.int32)
    n = 0
    for cell in cells:
        node = head[cell]
        while node >= 0:
            seg = node_seg[node]
            if scratch_all[seg] == 0:
                if n == touched.size:
                    grown = np.empty(2 * n, np.int32)
                    grown[:n] = touched
                    touched = grown
                touched[n] = seg
                n += 1
            scratch_all[seg] += 1
            if seg_perm[seg, node_slot[node]] >= connected:
                scratch_conn[seg] += 1
            node = node_next[node]
    segs = touched[:n].copy()
    act_all = np.empty(n, np.int32)
    act_conn = np.empty(n, np.int32)
    for j in range(n):
        act_all[j] = scratch_all[segs[j]]
        act_conn[j] = scratch_conn[segs[j]]
        scratch_all[segs[j]] = 0
        scratch_conn[segs[j]] = 0
    return segs, act_all, act_conn


@nb.njit(cache=True)
def _link(seg, slot, cell, head, node_next, node_prev, node_seg, node_slot, seg_node, free_nodes, n_free, n_used):
    """Add node (cell -> seg, slot) to the presynaptic index; returns the new (n_free, n_used)."""
    if n_free > 0:
        n_free -= 1
        node = free_nodes[n_free]
    else:
        node = n_used
        n_used += 1
    node_seg[node] = seg
    node_slot[node] = slot
    node_prev[node] = -1
    node_next[node] = head[cell]
    if head[cell] >= 0:
        node_prev[head[cell]] = node
    head[cell] = node
    seg_node[seg, slot] = node
    return n_free, n_used


@nb.njit(cache=True)
def _unlink(seg, slot, cell, head, node_next, node_prev, seg_node, free_nodes, n_free):
    node = seg_node[seg, slot]
    if node_prev[node] >= 0:
        node_next[node_prev[node]] = node_next[node]
    else:
        head[cell] = node_next[node]
    if node_next[node] >= 0:
        node_prev[node_next[node]] = node_prev[node]
    seg_node[seg, slot] = -1
    free_nodes[n_free] = node
    return n_free + 1


@nb.njit(cache=True)
def _adapt_kernel(seg, active, new_cells, inc, dec, init, seg_pre, seg_perm, seg_n, seg_node, head, node_next,
                  node_prev, node_seg, node_slot, free_nodes, n_free, n_used):
    """Reinforce the active synapses of `seg`, weaken the others, free the weakest (inactive first) to make
    room and grow synapses to `new_cells`. Returns (a synapse reached zero, n_free, n_used)."""
    M = seg_pre.shape[1]
    reached0 = False
    for slot in range(M):
        if seg_pre[seg, slot] < 0:
            continue
        if active[slot]:
            seg_perm[seg, slot] = min(seg_perm[seg, slot] + inc, np.float32(1.0))
        else:
            seg_perm[seg, slot] -= dec
            if seg_perm[seg, slot] <= 0:
                seg_perm[seg, slot] = 0
                reached0 = True
    excess = seg_n[seg] + new_cells.size - M
    for _ in range(max(excess, 0)):
        victim = -1
        for want_active in (False, True):
            for slot in range(M):
                if seg_pre[seg, slot] >= 0 and active[slot] == want_active:
                    if victim < 0 or seg_perm[seg, slot] < seg_perm[seg, victim]:
                        victim = slot
            if victim >= 0:
                break
        n_free = _unlink(seg, victim, seg_pre[seg, victim], head, node_next, node_prev, seg_node, free_nodes, n_free)
        seg_pre[seg, victim] = -1
        seg_perm[seg, victim] = 0
        seg_n[seg] -= 1
    slot = 0
    for cell in new_cells:
        while seg_pre[seg, slot] >= 0:
            slot += 1
        seg_pre[seg, slot] = cell
        seg_perm[seg, slot] = init
        n_free, n_used = _link(seg, slot, cell, head, node_next, node_prev, node_seg, node_slot, seg_node,
                               free_nodes, n_free, n_used)
        seg_n[seg] += 1
    return reached0, n_free, n_used


class _Stream:
    """One backtracking temporal memory (one NAB file)."""

    def __init__(self, p: TMParams, rng: np.random.Generator) -> None:
        self.p = p
        self.rng = rng
        C, K = p.columns, p.cells_per_column
        self.C, self.K, self.N, self.M = C, K, C * K, p.max_synapses_per_segment
        z = lambda: np.zeros(self.N, np.uint8)  # noqa: E731
        self.inf_active, self.inf_active1, self.inf_pred, self.inf_pred1 = z(), z(), z(), z()
        self.lrn_active, self.lrn_active1, self.lrn_pred, self.lrn_pred1 = z(), z(), z(), z()
        self.col_conf = np.zeros(C, bool)  # columns with confidence > 0 (predicted, for the anomaly score)
        self.cell_nseg = np.zeros(self.N, np.int32)
        self.mark = np.zeros(self.N, bool)  # scratch
        self.no_active = np.zeros(p.max_synapses_per_segment, bool)
        self.head = np.full(self.N, -1, np.int32)
        self._alloc_segments(256)
        self._alloc_nodes(4096)
        self.free_segs: list[int] = []
        self.n_segs_used = 0
        self.uid_counter = 0
        self.lrn_iter = 0
        self.avg_density: float | None = None
        self.pam = p.pam_length
        self.learned_len = 0
        self.reset_called = False
        self.prev_inf: list[np.ndarray] = []
        self.prev_lrn: list[np.ndarray] = []
        self.queue: dict[int, list[tuple]] = {}

    # --- storage --------------------------------------------------------------------------------------
    def _alloc_segments(self, cap: int) -> None:
        old = getattr(self, "seg_cell", None)
        n = 0 if old is None else old.size
        M = self.M

        def grow(name: str, shape: tuple, fill, dtype) -> None:
            arr = np.full(shape, fill, dtype)
            if n:
                arr[:n] = getattr(self, name)
            setattr(self, name, arr)

        grow("seg_cell", (cap,), -1, np.int32)
        grow("seg_uid", (cap,), -1, np.int64)
        grow("seg_seq", (cap,), False, bool)
        grow("seg_n", (cap,), 0, np.int32)
        grow("seg_pre", (cap, M), -1, np.int32)
        grow("seg_perm", (cap, M), 0.0, np.float32)
        grow("seg_node", (cap, M), -1, np.int32)
        grow("seg_pos", (cap,), 0, np.int64)
        grow("seg_dc", (cap,), 0.0, np.float64)
        grow("seg_dc_iter", (cap,), 0, np.int64)
        self.scratch_all = np.zeros(cap, np.int32)
        self.scratch_conn = np.zeros(cap, np.int32)

    def _alloc_nodes(self, cap: int) -> None:
        old = getattr(self, "node_seg", None)
        n = 0 if old is None else old.size
        for name, fill in (("node_seg", -1), ("node_slot", -1), ("node_next", -1), ("node_prev", -1)):
            arr = np.full(cap, fill, np.int32)
            if n:
                arr[:n] = getattr(self, name)
            setattr(self, name, arr)
        free = np.zeros(cap, np.int32)
        if n:
            free[: self.n_free_nodes] = self.free_nodes[: self.n_free_nodes]
        else:
            self.n_free_nodes = self.n_used_nodes = 0
        self.free_nodes = free

    @property
    def n_segments(self) -> int:
        return self.n_segs_used - len(self.free_segs)

    @property
    def n_synapses(self) -> int:
        return int(self.seg_n[: self.n_segs_used].sum())

    def _new_segment(self, cell: int, sequence: bool) -> int:
        if self.free_segs:
            seg = self.free_segs.pop()
        else:
            if self.n_segs_used == self.seg_cell.size:
                self._alloc_segments(2 * self.seg_cell.size)
            seg = self.n_segs_used
            self.n_segs_used += 1
        self.seg_cell[seg], self.seg_seq[seg], self.seg_n[seg] = cell, sequence, 0
        self.seg_uid[seg] = self.uid_counter
        self.uid_counter += 1
        self.seg_pos[seg] = 1
        self.seg_dc[seg], self.seg_dc_iter[seg] = 1.0 / max(self.lrn_iter, 1), self.lrn_iter
        self.cell_nseg[cell] += 1
        return seg

    def _free_segment(self, seg: int) -> None:
        for slot in np.flatnonzero(self.seg_pre[seg] >= 0):
            self._remove_synapse(seg, int(slot))
        self.cell_nseg[self.seg_cell[seg]] -= 1
        self.seg_cell[seg], self.seg_uid[seg] = -1, -1
        self.free_segs.append(seg)

    def _add_synapses(self, seg: int, cells: np.ndarray, perm: float) -> None:
        self._run_adapt(seg, np.zeros(self.M, bool), cells, inc=0.0, dec=0.0, init=perm)

    def _run_adapt(self, seg: int, active: np.ndarray, new_cells: np.ndarray, inc: float, dec: float,
                   init: float) -> bool:
        if self.n_used_nodes + len(new_cells) > self.node_seg.size:
            self._alloc_nodes(2 * self.node_seg.size + len(new_cells))
        reached0, self.n_free_nodes, self.n_used_nodes = _adapt_kernel(
            seg, active, new_cells.astype(np.int32), np.float32(inc), np.float32(dec), np.float32(init),
            self.seg_pre, self.seg_perm, self.seg_n, self.seg_node, self.head, self.node_next, self.node_prev,
            self.node_seg, self.node_slot, self.free_nodes, self.n_free_nodes, self.n_used_nodes,
        )
        return bool(reached0)

    def _remove_synapse(self, seg: int, slot: int) -> None:
        self.n_free_nodes = _unlink(
            seg, slot, int(self.seg_pre[seg, slot]), self.head, self.node_next, self.node_prev, self.seg_node,
            self.free_nodes, self.n_free_nodes,
        )
        self.seg_pre[seg, slot], self.seg_perm[seg, slot] = -1, 0.0
        self.seg_n[seg] -= 1

    def _activity(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cells = np.flatnonzero(state).astype(np.int32)
        return _activity(cells, self.head, self.node_next, self.node_seg, self.node_slot, self.seg_perm,
                         np.float32(self.p.connected_permanence), self.scratch_all, self.scratch_conn)

    def _duty_cycle(self, segs: np.ndarray, active: bool = False) -> np.ndarray:
        """Positive-activation duty cycle of `segs` (updated in place), NuPIC's tiered moving average."""
        it = self.lrn_iter
        if it <= DUTY_TIERS[1]:
            dc = self.seg_pos[segs] / max(it, 1)
        else:
            alpha = next(a for t, a in zip(DUTY_TIERS[::-1], DUTY_ALPHAS[::-1], strict=True) if it > t)
            dc = (1.0 - alpha) ** (it - self.seg_dc_iter[segs]) * self.seg_dc[segs] + (alpha if active else 0.0)
        self.seg_dc[segs], self.seg_dc_iter[segs] = dc, it
        return dc

    # --- shared pieces --------------------------------------------------------------------------------
    def _best_cells(self, segs: np.ndarray, acts: np.ndarray, threshold: int, cols: np.ndarray | None = None):
        """Per column: the cell and segment with the most active synapses (>= threshold); ties go to the
        higher cell, then the older segment. Returns (cols, cells, segs, activity), ordered by column."""
        keep = acts >= threshold
        segs, acts = segs[keep], acts[keep]
        cell = self.seg_cell[segs]
        col = cell // self.K
        if cols is not None:
            mask = np.zeros(self.C, bool)
            mask[cols] = True
            keep = mask[col]
            segs, acts, cell, col = segs[keep], acts[keep], cell[keep], col[keep]
        order = np.lexsort((self.seg_uid[segs], -(cell % self.K), -acts, col))
        col, cell, segs, acts = col[order], cell[order], segs[order], acts[order]
        first = np.ones(col.size, bool)
        first[1:] = col[1:] != col[:-1]
        return col[first], cell[first], segs[first], acts[first]

    def _choose_cells(self, seg: int | None, n: int, cands: np.ndarray) -> np.ndarray:
        """Up to n of the candidate cells `cands` (sorted) not yet on `seg`, at random, in cell order."""
        if n <= 0 or cands.size == 0:
            return cands[:0]
        if seg is not None:
            pre = self.seg_pre[seg]
            pre = pre[pre >= 0]
            self.mark[pre] = True
            cands = cands[~self.mark[cands]]
            self.mark[pre] = False
        if cands.size <= n:
            return cands
        return np.sort(self.rng.choice(cands, size=n, replace=False))

    def _adapt(self, seg: int | None, cell: int, active: np.ndarray, new_cells: np.ndarray,
               sequence: bool = False) -> bool:
        """Apply a segment update (`active`: the slots to reinforce); True when a synapse reached zero (the
        segment is then trimmed). `seg=None` grows a new segment on `cell` (if there is anything to grow)."""
        p = self.p
        if seg is None:
            if new_cells.size:
                seg = self._new_segment(cell, sequence)
                self._add_synapses(seg, new_cells, p.initial_permanence)
            return False
        self.seg_pos[seg] += 1
        self._duty_cycle(np.array([seg]), active=True)
        return self._run_adapt(seg, active, new_cells, p.permanence_increment, p.permanence_decrement,
                               p.initial_permanence)

    def _trim(self, seg: int, uid: int) -> None:
        if self.seg_uid[seg] != uid:
            return
        weak = np.flatnonzero((self.seg_pre[seg] >= 0) & (self.seg_perm[seg] < TRIM_BELOW))
        if weak.size == self.seg_n[seg]:
            self._free_segment(seg)
            return
        for slot in weak:
            self._remove_synapse(seg, int(slot))

    def _cell_for_new_segment(self, c: int) -> int:
        K = self.K
        lo = 0 if K == 1 else 1  # never the start cell
        cells = c * K + np.arange(lo, K)
        free = cells[self.cell_nseg[cells] < self.p.max_segments_per_cell]
        if free.size:
            return int(free[self.rng.integers(free.size)])
        live = np.flatnonzero(np.isin(self.seg_cell[: self.n_segs_used], cells))
        live = live[np.lexsort((self.seg_uid[live], self.seg_cell[live]))]
        victim = int(live[np.argmin(self._duty_cycle(live))])
        cell = int(self.seg_cell[victim])
        self._free_segment(victim)
        return cell

    # --- inference ------------------------------------------------------------------------------------
    def _infer_phase1(self, cols: np.ndarray, use_start_cells: bool) -> bool:
        act = self.inf_active
        act[:] = 0
        K = self.K
        if use_start_cells:
            act[cols * K] = 1
            return True
        pred = self.inf_pred1.reshape(self.C, K)[cols]
        has = pred.any(1)
        a2 = act.reshape(self.C, K)
        a2[cols[has]] = pred[has]
        a2[cols[~has]] = 1
        return bool(has.sum() >= 0.5 * cols.size)

    def _infer_phase2(self) -> bool:
        segs, act_all, act_conn = self._activity(self.inf_active)
        thr = self.p.activation_threshold
        self.col_conf[:] = False
        self.col_conf[self.seg_cell[segs[act_all >= thr]] // self.K] = True
        self.inf_pred[:] = 0
        pred_cells = self.seg_cell[segs[act_conn >= thr]]
        self.inf_pred[pred_cells] = 1
        n_pred_cols = np.unique(pred_cells // self.K).size
        return bool(n_pred_cols >= 0.5 * self.avg_density)

    def _infer_backtrack(self) -> None:
        n = len(self.prev_inf)
        if n <= 0:
            return
        backup_active, backup_pred1 = self.inf_active.copy(), self.inf_pred1.copy()
        bad: list[int] = []
        start = None
        for offset0 in range(n):
            in_seq = False
            for offset in range(offset0, n):
                self.inf_pred1[:] = self.inf_pred
                in_seq = self._infer_phase1(self.prev_inf[offset], use_start_cells=offset == offset0)
                if not in_seq:
                    break
                in_seq = self._infer_phase2()
                if not in_seq:
                    break
            if in_seq:
                start = offset0
                break
            bad.append(offset0)
        if start is None:  # no start locks on: burst on the current input as before
            self.inf_active[:] = backup_active
            self._infer_phase2()
        drop = 0
        for i in range(n):
            if i in bad or (start is not None and i <= start):
                drop += 1
            else:
                break
        del self.prev_inf[:drop]
        self.inf_pred1[:] = backup_pred1

    def _update_inference(self, cols: np.ndarray) -> None:
        self.inf_active1[:] = self.inf_active
        self.inf_pred1[:] = self.inf_pred
        if self.p.max_inf_backtrack > 0:
            if len(self.prev_inf) > self.p.max_inf_backtrack:
                self.prev_inf.pop(0)
            self.prev_inf.append(cols)
        if not self._infer_phase1(cols, self.reset_called) or not self._infer_phase2():
            self._infer_backtrack()

    # --- learning -------------------------------------------------------------------------------------
    def _process_updates(self, cols: np.ndarray) -> None:
        active_col = np.zeros(self.C, bool)
        active_col[cols] = True
        trims = []
        for cell, updates in self.queue.items():
            if not active_col[cell // self.K]:
                continue
            for date, seg, uid, active, new_cells in updates:
                if self.lrn_iter - date > 1 or self.seg_uid[seg] != uid:  # expired, or the segment is gone
                    continue
                if self._adapt(seg, cell, active, new_cells):
                    trims.append((seg, uid))
        self.queue = {}
        for seg, uid in trims:
            self._trim(seg, uid)

    def _learn_phase1(self, cols: np.ndarray, read_only: bool = False) -> bool:
        K, p = self.K, self.p
        act = self.lrn_active
        act[:] = 0
        pred = self.lrn_pred1.reshape(self.C, K)[cols]
        has = pred.any(1)
        act[cols[has] * K + pred[has].argmax(1)] = 1
        unpred = cols[~has]
        if not read_only and unpred.size:
            segs, act_all, _ = self._activity(self.lrn_active1)
            bcols, bcells, bsegs, _ = self._best_cells(segs, act_all, p.min_threshold, unpred)
            best = dict(zip(bcols.tolist(), zip(bcells.tolist(), bsegs.tolist(), strict=True), strict=True))
            prev_cells = np.flatnonzero(self.lrn_active1).astype(np.int32)
            for c in unpred.tolist():
                hit = best.get(c)
                if hit is not None and self.seg_seq[hit[1]]:
                    cell, seg = hit
                    act[cell] = 1
                    pre = self.seg_pre[seg]
                    active = (pre >= 0) & (self.lrn_active1[np.maximum(pre, 0)] == 1)
                    new = self._choose_cells(seg, p.new_synapse_count - int(active.sum()), prev_cells)
                    uid = int(self.seg_uid[seg])
                    if self._adapt(seg, cell, active, new):
                        self._trim(seg, uid)
                else:
                    cell = self._cell_for_new_segment(c)
                    act[cell] = 1
                    new = self._choose_cells(None, p.new_synapse_count, prev_cells)
                    self._adapt(None, cell, self.no_active, new, sequence=True)
        return unpred.size < cols.size // 2

    def _learn_phase2(self, read_only: bool = False) -> None:
        p = self.p
        self.lrn_pred[:] = 0
        segs, act_all, _ = self._activity(self.lrn_active)
        _, cells, bsegs, acts = self._best_cells(segs, act_all, p.activation_threshold)
        self.lrn_pred[cells] = 1
        if read_only:
            return
        active_cells = np.flatnonzero(self.lrn_active).astype(np.int32)
        pre = self.seg_pre[bsegs]
        active = (pre >= 0) & (self.lrn_active[np.maximum(pre, 0)] == 1)
        uids = self.seg_uid[bsegs]
        for j, (cell, seg, a) in enumerate(zip(cells.tolist(), bsegs.tolist(), acts.tolist(), strict=True)):
            new = self._choose_cells(seg, p.new_synapse_count - a, active_cells)
            self.queue.setdefault(cell, []).append((self.lrn_iter, seg, int(uids[j]), active[j], new))

    def _learn_backtrack_from(self, start: int, read_only: bool) -> bool:
        n = len(self.prev_lrn)
        if not read_only:
            self.queue = {}
        in_seq = True
        for offset in range(start, n):
            self.lrn_pred1[:] = self.lrn_pred
            self.lrn_active1[:] = self.lrn_active
            cols = self.prev_lrn[offset]
            if not read_only:
                self._process_updates(cols)
            if offset == start:
                self.lrn_active[:] = 0
                self.lrn_active[cols * self.K] = 1
                in_seq = True
            else:
                in_seq = self._learn_phase1(cols, read_only)
            if not in_seq or offset == n - 1:
                break
            self._learn_phase2(read_only)
        return in_seq

    def _learn_backtrack(self) -> int:
        n_prev = len(self.prev_lrn) - 1
        if n_prev <= 0:
            return 0
        bad: list[int] = []
        start = None
        for offset in range(n_prev):
            if self._learn_backtrack_from(offset, read_only=True):
                start = offset
                break
            bad.append(offset)
        if start is None:
            self.prev_lrn = []
            return 0
        self._learn_backtrack_from(start, read_only=False)
        drop = 0
        for i in range(n_prev):
            if i in bad or i <= start:
                drop += 1
            else:
                break
        del self.prev_lrn[:drop]
        return n_prev - start

    def _update_learning(self, cols: np.ndarray) -> None:
        p = self.p
        self.lrn_pred1[:] = self.lrn_pred
        self.lrn_active1[:] = self.lrn_active
        if p.max_lrn_backtrack > 0:
            if len(self.prev_lrn) > p.max_lrn_backtrack:
                self.prev_lrn.pop(0)
            self.prev_lrn.append(cols)
        self._process_updates(cols)
        if self.pam > 0:
            self.pam -= 1
        self.learned_len += 1
        if not self.reset_called and self._learn_phase1(cols):
            self.pam = p.pam_length
        too_long = p.max_seq_length != 0 and self.learned_len >= p.max_seq_length
        if self.reset_called or self.pam == 0 or too_long:
            back = 0 if self.reset_called else self._learn_backtrack()
            if back == 0:
                self.lrn_active[:] = 0
                self.lrn_active[cols * self.K] = 1
                self.prev_lrn = []
            self.pam = p.pam_length
            self.learned_len = back
            self.queue = {}
        self._learn_phase2()

    # --- one step ---------------------------------------------------------------------------------------
    def compute(self, cols: np.ndarray, learn: bool = True) -> float:
        """Active columns (sorted) -> raw anomaly score: the fraction not predicted at the previous step."""
        if learn:
            self.lrn_iter += 1
            if self.lrn_iter in DUTY_TIERS:
                live = np.flatnonzero(self.seg_cell[: self.n_segs_used] >= 0)
                self._duty_cycle(live)
        predicted = self.col_conf.copy()
        n = cols.size
        self.avg_density = float(n) if self.avg_density is None else 0.99 * self.avg_density + 0.01 * n
        self._update_inference(cols)
        if learn:
            self._update_learning(cols)
        self.reset_called = False
        return 0.0 if n == 0 else 1.0 - float(predicted[cols].sum()) / n


class BacktrackingTemporalMemory:
    """B independent backtracking temporal memories behind `TemporalMemory`'s interface."""

    def __init__(self, params: TMParams, batch: int = 1, device: torch.device | str = "cpu") -> None:
        if params.algorithm != "backtracking":
            raise ValueError(f"BacktrackingTemporalMemory runs algorithm=backtracking, got {params.algorithm!r}")
        self.C, self.K, self.B = params.columns, params.cells_per_column, batch
        self.params = params
        self.dev = torch.device(device)
        self.streams = [_Stream(params, np.random.default_rng(params.seed)) for _ in range(batch)]
        self.live = batch

    @property
    def n_segments(self) -> int:
        return sum(s.n_segments for s in self.streams)

    @property
    def n_synapses(self) -> int:
        return sum(s.n_synapses for s in self.streams)

    def keep_streams(self, m: int) -> None:
        """Drop every stream from the m-th on (they have ended)."""
        if m < self.live:
            self.live = m
            self.streams = self.streams[:m]

    def compute(self, active_cols: torch.Tensor, n_streams: int, learn: bool = True) -> torch.Tensor:
        """Active columns (global ids `b * C + c`, sorted) -> raw anomaly score of each of the first n_streams."""
        cols = active_cols.cpu().numpy()
        bounds = np.searchsorted(cols, np.arange(n_streams + 1) * self.C)
        scores = [
            self.streams[b].compute((cols[bounds[b] : bounds[b + 1]] - b * self.C).astype(np.int64), learn)
            for b in range(n_streams)
        ]
        return torch.tensor(scores, dtype=torch.float32, device=self.dev)
