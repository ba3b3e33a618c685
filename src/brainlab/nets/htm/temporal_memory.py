"""The BAMI temporal memory (Numenta's `TemporalMemory`, NAB's numentaTM detector), sparse and batched.

Synapses live in fixed-width segment rows (`max_synapses_per_segment`), and a presynaptic index (cell -> synapse
ids) makes each step touch only the synapses of the active cells, so a step costs O(active cells x their
synapses), not O(all segments).
"""

from __future__ import annotations

import torch

from brainlab.nets.htm.params import TMParams

_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors holding values in [0, 2^32) (no overflow: factors < 2^27)."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    return (x >> 16) ^ x


def counter_uniform(seed: int, *keys: torch.Tensor | int) -> torch.Tensor:
    """Uniform floats in [0, 1) from a hash of (seed, keys...), broadcast over the keys' shapes.

    A counter-based generator: a draw depends only on what it is for (iteration, stream-local cell, ...),
    never on how many draws came before, so B streams run together draw exactly what each would alone."""
    tensors = [k for k in keys if isinstance(k, torch.Tensor)]
    h = torch.full((), seed & _M32, dtype=torch.long, device=tensors[0].device if tensors else None)
    for k in keys:
        h = _mix32((h + 0x9E3779B9 + (torch.as_tensor(k, device=h.device) & _M32)) & _M32)
    return h.to(torch.float64).div_(2.0**32).to(torch.float32)


class TemporalMemory:
    """Sparse temporal memory (BAMI pseudocode, as Numenta's `TemporalMemory`) for B independent streams.

    Cells carry global ids `b * N + c` (N = columns x cells per stream; cell c is in column c // K), so B
    streams share one segment pool but never connect: a segment grows synapses only to its own stream's
    previous winner cells. Every tie is broken by stream-local keys (cell, creation step) and every random
    draw comes from `counter_uniform` on stream-local ids, so a stream's run is the same alone or in a batch.
    """

    def __init__(self, params: TMParams, batch: int = 1, device: torch.device | str = "cpu") -> None:
        if params.algorithm != "bami":
            raise ValueError(f"TemporalMemory runs algorithm=bami, got params for {params.algorithm!r}")
        self.params = p = params
        self.C, self.K, self.M, self.B = p.columns, p.cells_per_column, p.max_synapses_per_segment, batch
        self.N = self.C * self.K  # cells per stream
        self.act_thr, self.min_thr, self.n_new = p.activation_threshold, p.min_threshold, p.new_synapse_count
        self.max_segs = p.max_segments_per_cell
        self.p_init, self.p_conn = p.initial_permanence, p.connected_permanence
        self.p_inc, self.p_dec = p.permanence_increment, p.permanence_decrement
        self.p_punish = p.predicted_segment_decrement
        self.seed = p.seed
        self.dev = torch.device(device)
        self.iteration = 0
        cap = 1024
        self.seg_cell = torch.full((cap,), -1, dtype=torch.long, device=self.dev)
        self.pre = torch.full((cap, self.M), -1, dtype=torch.long, device=self.dev)
        self.perm = torch.zeros(cap, self.M, device=self.dev)
        self.last_used = torch.zeros(cap, dtype=torch.long, device=self.dev)
        self.created = torch.zeros(cap, dtype=torch.long, device=self.dev)
        self.n_alloc, self.n_free = 0, 0
        total = batch * self.N
        self.n_segs = torch.zeros(total, dtype=torch.long, device=self.dev)
        # presynaptic index: a CSR snapshot (cell -> synapse ids) plus a buffer of synapses grown since
        self.csr_ptr = torch.zeros(total + 1, dtype=torch.long, device=self.dev)
        self.csr_cells = self.csr_ids = self.csr_ver = torch.zeros(0, dtype=torch.long, device=self.dev)
        self.version = torch.zeros(cap * self.M, dtype=torch.long, device=self.dev)  # bumped on every regrowth
        self.buf = torch.zeros(3, 4096, dtype=torch.long, device=self.dev)  # rows: cell, flat id, version
        self.buf_size = 0
        self.live = batch  # streams still running (a prefix)
        empty = torch.zeros(0, dtype=torch.long, device=self.dev)
        self.active_cells = self.winner_cells = self.active_segs = self.matching_segs = self.nap = empty
        self.prev_active_mask = torch.zeros(total, dtype=torch.bool, device=self.dev)
        self.col_mask = torch.zeros(batch * self.C, dtype=torch.bool, device=self.dev)
        self.arange_k = torch.arange(self.K, device=self.dev)

    # --- storage --------------------------------------------------------------------------------------
    @property
    def n_segments(self) -> int:
        return self.n_alloc - self.n_free

    @property
    def n_synapses(self) -> int:
        return int((self.pre[: self.n_alloc] >= 0).sum())

    def _grow_capacity(self, need: int) -> None:
        cap = self.seg_cell.numel()
        if need <= cap:
            return
        pad = max(need, 2 * cap) - cap
        self.seg_cell = torch.cat([self.seg_cell, self.seg_cell.new_full((pad,), -1)])
        self.pre = torch.cat([self.pre, self.pre.new_full((pad, self.M), -1)])
        self.perm = torch.cat([self.perm, self.perm.new_zeros(pad, self.M)])
        self.last_used = torch.cat([self.last_used, self.last_used.new_zeros(pad)])
        self.created = torch.cat([self.created, self.created.new_zeros(pad)])
        self.version = torch.cat([self.version, self.version.new_zeros(pad * self.M)])

    def _free_segments(self, segs: torch.Tensor) -> None:
        if segs.numel() == 0:
            return
        self.n_segs.index_add_(0, self.seg_cell[segs], torch.full_like(segs, -1))
        self.seg_cell[segs] = -1
        self.pre[segs] = -1
        self.n_free += int(segs.numel())

    def _create_segments(self, cells: torch.Tensor) -> torch.Tensor:
        """New (empty) segments on distinct `cells`; a full cell first loses its least recently used segment
        (ties: the oldest)."""
        full = self.n_segs[cells] >= self.max_segs
        if bool(full.any()):
            owned = torch.nonzero(torch.isin(self.seg_cell[: self.n_alloc], cells[full])).squeeze(1)
            owned = owned[(self.last_used[owned] * 2**24 + self.created[owned]).argsort()]
            owned = owned[self.seg_cell[owned].argsort(stable=True)]
            own_cell = self.seg_cell[owned]
            first = torch.ones_like(own_cell, dtype=torch.bool)
            first[1:] = own_cell[1:] != own_cell[:-1]
            self._free_segments(owned[first])
        k = int(cells.numel())
        holes = torch.nonzero(self.seg_cell[: self.n_alloc] < 0).squeeze(1)[:k]
        fresh = k - holes.numel()
        if fresh:
            self._grow_capacity(self.n_alloc + fresh)
            holes = torch.cat([holes, torch.arange(self.n_alloc, self.n_alloc + fresh, device=self.dev)])
            self.n_alloc += fresh
        self.n_free -= k - fresh
        segs = holes
        self.seg_cell[segs] = cells
        self.pre[segs] = -1
        self.last_used[segs] = self.iteration
        self.created[segs] = self.iteration
        self.n_segs.index_add_(0, cells, torch.ones_like(cells))
        return segs

    def _index_synapses(self, cells: torch.Tensor, ids: torch.Tensor) -> None:
        """Register new synapses (flat ids) under their presynaptic cells. An entry is live while the slot
        still holds that cell at that version, so replaced or destroyed synapses drop out on lookup."""
        self.version[ids] += 1
        k = int(cells.numel())
        if self.buf_size + k > self.buf.shape[1]:
            grown = self.buf.new_zeros(3, max(2 * self.buf.shape[1], self.buf_size + k))
            grown[:, : self.buf_size] = self.buf[:, : self.buf_size]
            self.buf = grown
        self.buf[:, self.buf_size : self.buf_size + k] = torch.stack([cells, ids, self.version[ids]])
        self.buf_size += k
        if self.buf_size > max(50_000, self.csr_ids.numel() // 8):
            self._rebuild_index()

    def _rebuild_index(self) -> None:
        """A fresh CSR snapshot of every live synapse, sorted by presynaptic cell; empties the buffer."""
        flat_pre = self.pre[: self.n_alloc].reshape(-1)
        ids = torch.nonzero(flat_pre >= 0).squeeze(1)
        cells = flat_pre[ids]
        order = cells.argsort()
        self.csr_cells, self.csr_ids = cells[order], ids[order]
        self.csr_ver = self.version[self.csr_ids]
        self.csr_ptr = torch.zeros(self.B * self.N + 1, dtype=torch.long, device=self.dev)
        self.csr_ptr[1:] = torch.cumsum(torch.bincount(cells, minlength=self.B * self.N), 0)
        self.buf_size = 0

    def _synapses_of(self, active_cells: torch.Tensor, active_mask: torch.Tensor) -> torch.Tensor:
        """Flat ids (each once) of live synapses whose presynaptic cell is active."""
        lo = self.csr_ptr[active_cells]
        cnt = self.csr_ptr[active_cells + 1] - lo
        total = int(cnt.sum())
        ids, cells, vers = [], [], []
        if total:
            starts = torch.cumsum(cnt, 0) - cnt
            pos = torch.repeat_interleave(lo - starts, cnt) + torch.arange(total, device=self.dev)
            ids.append(self.csr_ids[pos])
            cells.append(self.csr_cells[pos])
            vers.append(self.csr_ver[pos])
        if self.buf_size:
            buf = self.buf[:, : self.buf_size]
            sel = buf[:, active_mask[buf[0]]]
            cells.append(sel[0])
            ids.append(sel[1])
            vers.append(sel[2])
        if not ids:
            return torch.zeros(0, dtype=torch.long, device=self.dev)
        flat, cell, ver = torch.cat(ids), torch.cat(cells), torch.cat(vers)
        live = (self.pre.view(-1)[flat] == cell) & (self.version[flat] == ver)
        return flat[live]

    def keep_streams(self, m: int) -> None:
        """Drop every stream from the m-th on (they have ended): their segments leave the pool, which is
        compacted, so later steps cost only what the running streams hold."""
        if m >= self.live:
            return
        self.live = m
        limit = m * self.N
        cell = self.seg_cell[: self.n_alloc]
        segs = torch.nonzero((cell >= 0) & (cell < limit)).squeeze(1)
        remap = torch.full((self.n_alloc + 1,), -1, dtype=torch.long, device=self.dev)
        remap[segs] = torch.arange(segs.numel(), device=self.dev)
        cap = max(1024, 2 * segs.numel())
        pad = cap - segs.numel()
        self.seg_cell = torch.cat([self.seg_cell[segs], self.seg_cell.new_full((pad,), -1)])
        self.pre = torch.cat([self.pre[segs], self.pre.new_full((pad, self.M), -1)])
        self.perm = torch.cat([self.perm[segs], self.perm.new_zeros(pad, self.M)])
        self.last_used = torch.cat([self.last_used[segs], self.last_used.new_zeros(pad)])
        self.created = torch.cat([self.created[segs], self.created.new_zeros(pad)])
        self.version = torch.cat(
            [self.version.view(-1, self.M)[segs].reshape(-1), self.version.new_zeros(pad * self.M)]
        )
        self.n_alloc, self.n_free = int(segs.numel()), 0
        self.n_segs[limit:] = 0
        self.prev_active_mask[limit:] = False
        self.active_cells = self.active_cells[self.active_cells < limit]
        self.winner_cells = self.winner_cells[self.winner_cells < limit]
        keep = remap[self.matching_segs] >= 0
        self.matching_segs, self.nap = remap[self.matching_segs][keep], self.nap[keep]
        self.active_segs = remap[self.active_segs][remap[self.active_segs] >= 0]
        self._rebuild_index()

    # --- one time step --------------------------------------------------------------------------------
    def compute(self, active_cols: torch.Tensor, n_streams: int, learn: bool = True) -> torch.Tensor:
        """Active columns (global ids `b * C + c`, sorted, unique, b < n_streams) -> raw anomaly score of each
        of the first n_streams streams (fraction of active columns not predicted; 0 with no active column)."""
        self.iteration += 1
        C, K = self.C, self.K
        col_active = self.col_mask.clone()
        col_active[active_cols] = True
        seg_col = self.seg_cell[self.active_segs] // K
        predicted_col = self.col_mask.clone()
        predicted_col[seg_col] = True
        correct_segs = self.active_segs[col_active[seg_col]]
        burst_cols = active_cols[~predicted_col[active_cols]]
        n_act = torch.bincount(active_cols // C, minlength=n_streams)[:n_streams]
        n_burst = torch.bincount(burst_cols // C, minlength=n_streams)[:n_streams]
        anomaly = n_burst.float() / n_act.clamp(min=1).float()

        predicted_cells = torch.unique(self.seg_cell[correct_segs])
        burst_cells = (burst_cols[:, None] * K + self.arange_k).reshape(-1)
        # best matching segment per bursting column: most active potential synapses, then lowest cell, oldest
        burst_mask = self.col_mask.clone()
        burst_mask[burst_cols] = True
        m_col = self.seg_cell[self.matching_segs] // K
        in_burst = burst_mask[m_col]
        ms, ms_col = self.matching_segs[in_burst], m_col[in_burst]
        key = (ms_col << 40) | ((255 - self.nap[in_burst]) << 32) | ((self.seg_cell[ms] % K) << 24) | self.created[ms]
        order = key.argsort()
        ms, ms_col = ms[order], ms_col[order]
        first = torch.ones_like(ms_col, dtype=torch.bool)
        first[1:] = ms_col[1:] != ms_col[:-1]
        best_segs, best_cols = ms[first], ms_col[first]
        matched = self.col_mask.clone()
        matched[best_cols] = True
        unmatched = burst_cols[~matched[burst_cols]]
        cand = unmatched[:, None] * K + self.arange_k  # least used cell, random among ties
        usage = self.n_segs[cand].float() + counter_uniform(self.seed, 1, self.iteration, cand % self.N) * 0.5
        new_cells = cand.gather(1, usage.argmin(1, keepdim=True)).squeeze(1)
        winners = torch.cat([predicted_cells, self.seg_cell[best_segs], new_cells]).sort().values

        if learn:
            self._learn(correct_segs, best_segs, new_cells, col_active)
        active_cells = torch.cat([predicted_cells, burst_cells])
        self.prev_active_mask[self.active_cells] = False
        self.prev_active_mask[active_cells] = True
        self.active_cells, self.winner_cells = active_cells, winners
        self._activate_dendrites(active_cells, learn)
        return anomaly

    def _nap_of(self, segs: torch.Tensor) -> torch.Tensor:
        """numActivePotential (last step) of segments (0 for non-matching)."""
        if segs.numel() == 0 or self.matching_segs.numel() == 0:
            return torch.zeros_like(segs)
        pos = torch.searchsorted(self.matching_segs, segs).clamp(max=self.matching_segs.numel() - 1)
        return torch.where(self.matching_segs[pos] == segs, self.nap[pos], torch.zeros_like(segs))

    def _adapt(self, segs: torch.Tensor, inc: float, dec: float) -> None:
        """Active presynaptic cell: +inc, else -dec; clipped to [0, 1]; synapses reaching 0 are destroyed."""
        pre = self.pre[segs]
        valid = pre >= 0
        hit = valid & self.prev_active_mask[pre.clamp(min=0)]
        step = torch.where(hit, inc, torch.where(valid, -dec, 0.0))
        perm = (self.perm[segs] + step).clamp_(0.0, 1.0)
        self.perm[segs] = perm
        self.pre[segs] = torch.where(valid & (perm < 1e-6), -1, pre)

    def _learn(
        self, correct_segs: torch.Tensor, best_segs: torch.Tensor, new_cells: torch.Tensor, col_active: torch.Tensor
    ) -> None:
        prev_winners = self.winner_cells
        adapt = torch.cat([correct_segs, best_segs])
        n_grow = self.n_new - self._nap_of(adapt)
        if adapt.numel():
            self._adapt(adapt, self.p_inc, self.p_dec)
            self.last_used[adapt] = self.iteration
        if self.p_punish > 0 and self.matching_segs.numel():  # predicted but not active: punish
            wrong = self.matching_segs[~col_active[self.seg_cell[self.matching_segs] // self.K]]
            if wrong.numel():
                self._adapt(wrong, -self.p_punish, 0.0)
                self._free_segments(wrong[(self.pre[wrong] < 0).all(1)])
        has_winners = torch.zeros(self.B + 1, dtype=torch.bool, device=self.dev)
        has_winners[prev_winners // self.N] = True
        new_cells = new_cells[has_winners[new_cells // self.N]]  # nothing to connect to: no segment
        if new_cells.numel() or adapt.numel():
            new_segs = self._create_segments(new_cells) if new_cells.numel() else new_cells
            grow = torch.cat([adapt, new_segs])
            n_grow = torch.cat([n_grow, torch.full_like(new_segs, self.n_new)])
            self._grow(grow, n_grow, prev_winners)
        if adapt.numel():  # segments left without synapses are destroyed
            self._free_segments(adapt[(self.pre[adapt] < 0).all(1)])

    def _grow(self, segs: torch.Tensor, n_grow: torch.Tensor, winners: torch.Tensor) -> None:
        """Grow up to n_grow synapses per segment to random previous winner cells of its own stream that it
        is not yet connected to; a full segment gives up its weakest synapses first."""
        keep = n_grow > 0
        segs, n_grow = segs[keep], n_grow[keep]
        if segs.numel() == 0 or winners.numel() == 0:
            return
        # candidates per stream as a padded (B, W) table of its sorted winner cells
        stream = winners // self.N
        counts = torch.bincount(stream, minlength=self.B)
        starts = torch.cumsum(counts, 0) - counts
        table = torch.full((self.B, int(counts.max())), -1, dtype=torch.long, device=self.dev)
        table[stream, torch.arange(winners.numel(), device=self.dev) - starts[stream]] = winners
        cell = self.seg_cell[segs]
        cands = table[cell // self.N]
        pre = self.pre[segs]
        taken = cands < 0
        pos = torch.searchsorted(winners, pre.clamp(min=0)).clamp_(max=winners.numel() - 1)
        row, slot = torch.nonzero((winners[pos] == pre) & (pre >= 0), as_tuple=True)
        taken[row, pos[row, slot] - starts[stream[pos[row, slot]]]] = True  # already connected to it
        prio = counter_uniform(self.seed, 2, self.iteration, (cell % self.N)[:, None], cands % self.N)
        prio = prio.masked_fill_(taken, 2.0)
        prio, cand_order = prio.sort(1)
        n_avail = (prio < 2.0).sum(1)
        slot_key = torch.where(pre < 0, -1.0, self.perm[segs])
        slot_order = slot_key.argsort(dim=1, stable=True)
        k = torch.minimum(torch.minimum(n_grow, n_avail), torch.full_like(n_grow, self.M))
        width = min(self.M, cands.shape[1])
        gi, ti = torch.nonzero(torch.arange(width, device=self.dev)[None, :] < k[:, None], as_tuple=True)
        if gi.numel() == 0:
            return
        seg, slot = segs[gi], slot_order[gi, ti]
        new_pre = cands[gi, cand_order[gi, ti]]
        self.pre[seg, slot] = new_pre
        self.perm[seg, slot] = self.p_init
        self._index_synapses(new_pre, seg * self.M + slot)

    def _activate_dendrites(self, active_cells: torch.Tensor, learn: bool) -> None:
        """Segments' active connected / potential synapse counts from the active cells (via the index)."""
        empty = torch.zeros(0, dtype=torch.long, device=self.dev)
        if active_cells.numel() == 0 or self.n_alloc == 0:
            self.active_segs = self.matching_segs = self.nap = empty
            return
        ids = self._synapses_of(active_cells, self.prev_active_mask)
        seg = ids // self.M
        connected = (self.perm.view(-1)[ids] >= self.p_conn).float()
        nap = torch.bincount(seg, minlength=self.n_alloc)
        nac = torch.bincount(seg, weights=connected, minlength=self.n_alloc)
        self.matching_segs = torch.nonzero(nap >= self.min_thr).squeeze(1)
        self.nap = nap[self.matching_segs]
        self.active_segs = torch.nonzero(nac >= self.act_thr).squeeze(1)
        if learn and self.active_segs.numel():
            self.last_used[self.active_segs] = self.iteration
