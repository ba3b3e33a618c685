"""Hierarchical Temporal Memory in PyTorch, written from Numenta's published descriptions (BAMI; Hawkins &
Ahmad 2016; Cui, Ahmad & Hawkins 2017; Ahmad et al. 2017 for the anomaly likelihood).

Encoders (random distributed scalar encoder + periodic time-of-day + optional weekend bits) -> spatial pooler
(global k-winners, boosting, Hebbian permanence learning) -> temporal memory (columns x cells, distal
segments, predictive cells, bursting, reinforcement, growth, punishment) -> raw anomaly score (fraction of
active columns that were not predicted) -> anomaly likelihood (Gaussian tail probability of the rolling mean
raw score, re-estimated on a rolling window), as in Numenta's NAB detector.

The temporal memory is sparse: synapses live in fixed-width segment rows (`max_synapses_per_segment`), and a
presynaptic index (cell -> synapse ids) makes each step touch only the synapses of the active cells, so a step
costs O(active cells x their synapses), not O(all segments).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.nets.backtracking_tm import BacktrackingTemporalMemory


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

    def __init__(
        self,
        size: int = 400,
        active_bits: int = 21,
        n_buckets: int = 130,
        min_resolution: float = 0.001,
        range_padding: float = 0.2,
        time_of_day_bits: int = 21,
        time_of_day_radius: float = 9.49,
        weekend_bits: int = 0,
        max_buckets: int = 1000,
        max_overlap: int = 2,
        seed: int = 42,
    ) -> None:
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


class SpatialPooler:
    """Global-inhibition spatial pooler for B independent streams (dim 0), as Numenta's C++ SP: overlap with
    connected proximal synapses, boosting, k winners, Hebbian permanence learning on the winners (trimmed
    below active_inc / 2), duty cycles, weak-column bumping every step against a minimum overlap duty
    cycle refreshed every `update_period` steps. All streams start from the same seeded state (NAB runs a
    fresh, identically seeded detector per file)."""

    def __init__(
        self,
        input_size: int,
        columns: int = 2048,
        active_columns: int = 40,
        potential_pct: float = 0.8,
        connected: float = 0.2,
        active_inc: float = 0.003,
        inactive_dec: float = 0.0005,
        boost_strength: float = 0.0,
        duty_cycle_period: int = 1000,
        min_pct_overlap_duty: float = 0.001,
        update_period: int = 50,
        seed: int = 1956,
        batch: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if not 0 < active_columns <= columns:
            raise ConfigError(f"model.net.sp.active_columns must be in 1..columns ({columns}), got {active_columns}")
        g = torch.Generator().manual_seed(seed)
        self.I, self.C, self.k, self.B = input_size, columns, active_columns, batch
        self.connected, self.inc, self.dec, self.boost_strength = connected, active_inc, inactive_dec, boost_strength
        self.trim = active_inc / 2.0
        self.period, self.min_pct, self.update_period = duty_cycle_period, min_pct_overlap_duty, update_period
        n_pot = max(1, int(round(potential_pct * input_size)))
        order = torch.rand(columns, input_size, generator=g).argsort(dim=1)
        potential = torch.zeros(columns, input_size, dtype=torch.bool)
        potential.scatter_(1, order[:, :n_pot], True)
        r = torch.rand(columns, input_size, generator=g)
        above = torch.rand(columns, input_size, generator=g) < 0.5
        perm = torch.where(above, connected + (1 - connected) * r, connected * r) * potential
        perm[perm < self.trim] = 0.0
        self.tie = (torch.rand(columns, generator=g) * 1e-3).to(device)
        self.potential = potential.float().to(device)  # (C, I), shared: it never changes
        self.perm = perm.to(device).expand(batch, columns, input_size).contiguous()  # (B, C, I)
        # connectivity as (B, I + 1, C) bytes (the last input row is the all-zero "no bit" sentinel), so a
        # step's overlap gathers only the active inputs' rows
        conn = torch.zeros(batch, input_size + 1, columns, dtype=torch.uint8, device=device)
        conn[:, :input_size] = (self.perm >= connected).transpose(1, 2)
        self.conn_t = conn
        self.boost = torch.ones(batch, columns, device=device)
        self.overlap_duty = torch.zeros(batch, columns, device=device)
        self.active_duty = torch.zeros(batch, columns, device=device)
        self.min_overlap_duty = torch.zeros(batch, 1, device=device)
        self.iteration = 0

    def compute(self, bits: torch.Tensor, learn: bool = True) -> torch.Tensor:
        """Active input bits (n, A) of the first n streams (index I = no bit) -> active columns (n, C) bool."""
        n, a = bits.shape
        flat = (bits + torch.arange(n, device=bits.device)[:, None] * (self.I + 1)).reshape(-1)
        rows = self.conn_t[:n].reshape(n * (self.I + 1), self.C).index_select(0, flat).view(n, a, self.C)
        overlap = rows.sum(1, dtype=torch.uint8).float()  # < 256 active input bits
        winners = torch.topk(overlap * self.boost[:n] + self.tie, self.k, dim=1).indices  # (n, k)
        ok = overlap.gather(1, winners) > 0
        active = torch.zeros(n, self.C, dtype=torch.bool, device=bits.device)
        active.scatter_(1, winners, ok)
        if learn:
            self._learn(bits, overlap, winners, ok, active)
        return active

    def _rows(self, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.perm.view(-1, self.I).index_select(0, b * self.C + c)

    def _write(self, b: torch.Tensor, c: torch.Tensor, before: torch.Tensor, rows: torch.Tensor) -> None:
        """Store permanence rows (b, c) (`before`: their old values) and the connectivity that changed."""
        self.perm.view(-1, self.I).index_copy_(0, b * self.C + c, rows)
        j, i = torch.nonzero((before >= self.connected) != (rows >= self.connected), as_tuple=True)
        if j.numel():
            self.conn_t[b[j], i, c[j]] = (rows[j, i] >= self.connected).to(torch.uint8)

    def _learn(
        self, bits: torch.Tensor, overlap: torch.Tensor, winners: torch.Tensor, ok: torch.Tensor, active: torch.Tensor
    ) -> None:
        n = bits.shape[0]
        self.iteration += 1
        x = torch.zeros(n, self.I + 1, device=bits.device)
        x.scatter_(1, bits, 1.0)
        b = torch.arange(n, device=bits.device)[:, None].expand_as(winners)[ok]
        c = winners[ok]
        delta = (x.index_select(0, b)[:, : self.I] * (self.inc + self.dec) - self.dec) * self.potential.index_select(
            0, c
        )
        before = self._rows(b, c)
        rows = (before + delta).clamp_(0.0, 1.0)
        self._write(b, c, before, rows.masked_fill_(rows < self.trim, 0.0))
        period = min(self.iteration, self.period)
        self.overlap_duty[:n].mul_(period - 1).add_((overlap > 0).float()).div_(period)
        self.active_duty[:n].mul_(period - 1).add_(active.float()).div_(period)
        weak_b, weak_c = torch.nonzero(self.overlap_duty[:n] < self.min_overlap_duty[:n], as_tuple=True)
        if weak_b.numel():  # bump up columns that rarely overlap the input at all
            before = self._rows(weak_b, weak_c)
            rows = (before + self.connected / 10.0 * self.potential.index_select(0, weak_c)).clamp_(0.0, 1.0)
            self._write(weak_b, weak_c, before, rows.masked_fill_(rows < self.trim, 0.0))
        if self.boost_strength > 0:
            target = self.k / self.C
            self.boost[:n] = torch.exp(-(self.active_duty[:n] - target) * self.boost_strength)
        if self.iteration % self.update_period == 0:
            self.min_overlap_duty[:n] = self.min_pct * self.overlap_duty[:n].amax(1, keepdim=True)


class TemporalMemory:
    """Sparse temporal memory (BAMI pseudocode, as Numenta's `TemporalMemory`) for B independent streams.

    Cells carry global ids `b * N + c` (N = columns x cells per stream; cell c is in column c // K), so B
    streams share one segment pool but never connect: a segment grows synapses only to its own stream's
    previous winner cells. Every tie is broken by stream-local keys (cell, creation step) and every random
    draw comes from `counter_uniform` on stream-local ids, so a stream's run is the same alone or in a batch.
    """

    def __init__(
        self,
        columns: int = 2048,
        cells_per_column: int = 32,
        activation_threshold: int = 13,
        min_threshold: int = 10,
        new_synapse_count: int = 20,
        max_synapses_per_segment: int = 32,
        max_segments_per_cell: int = 128,
        initial_permanence: float = 0.21,
        connected_permanence: float = 0.5,
        permanence_increment: float = 0.1,
        permanence_decrement: float = 0.1,
        predicted_segment_decrement: float = 0.0,
        seed: int = 1960,
        batch: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if min_threshold > activation_threshold:
            raise ConfigError("model.net.tm.min_threshold must be <= activation_threshold")
        if new_synapse_count > max_synapses_per_segment:
            raise ConfigError("model.net.tm.new_synapse_count must be <= max_synapses_per_segment")
        if max_synapses_per_segment > 255 or cells_per_column > 255:
            raise ConfigError("model.net.tm.max_synapses_per_segment and model.net.cells_per_column must be <= 255")
        self.C, self.K, self.M, self.B = columns, cells_per_column, max_synapses_per_segment, batch
        self.N = columns * cells_per_column  # cells per stream
        self.act_thr, self.min_thr, self.n_new = activation_threshold, min_threshold, new_synapse_count
        self.max_segs = max_segments_per_cell
        self.p_init, self.p_conn = initial_permanence, connected_permanence
        self.p_inc, self.p_dec, self.p_punish = permanence_increment, permanence_decrement, predicted_segment_decrement
        self.seed = seed
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
        self.col_mask = torch.zeros(batch * columns, dtype=torch.bool, device=self.dev)
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


# model.net.tm.algorithm: bami = Numenta's TemporalMemory (NAB's numentaTM detector); backtracking = NuPIC's
# older BacktrackingTM (NAB's numenta detector)
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
        if columns < 1 or cells_per_column < 1:
            raise ConfigError("model.net.columns and model.net.cells_per_column must be >= 1")
        self.encoder_cfg, self.sp_cfg, self.tm_cfg = dict(encoder or {}), dict(sp or {}), dict(tm or {})
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
        tm_cfg = dict(self.tm_cfg)
        algorithm = tm_cfg.pop("algorithm", "bami")
        if algorithm not in TM_ALGORITHMS:
            raise ConfigError(f"model.net.tm.algorithm={algorithm!r} is not one of {sorted(TM_ALGORITHMS)}")
        self.tm = TM_ALGORITHMS[algorithm](self.columns, self.cells_per_column, batch=len(lo), device=dev, **tm_cfg)
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
