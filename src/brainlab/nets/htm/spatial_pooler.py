"""The spatial pooler: active input bits -> k active columns, with Hebbian permanence learning."""

from __future__ import annotations

import torch

from brainlab.core.errors import ConfigError


def hebbian_delta(co: torch.Tensor, wins: torch.Tensor | float, inc: float, dec: float) -> torch.Tensor:
    """The spatial pooler's Hebbian rule for winning columns: +inc for each win with the input on, -dec for each
    win with it off. `co` (..., inputs): wins with the input on; `wins`: all wins (broadcast against `co`)."""
    return co * (inc + dec) - dec * wins


class SpatialPooler:
    """Global-inhibition spatial pooler for B independent streams (dim 0), as Numenta's C++ SP: overlap with
    connected proximal synapses, boosting, k winners, Hebbian permanence learning on the winners (trimmed
    below active_inc / 2), duty cycles, weak-column bumping every step against a minimum overlap duty
    cycle refreshed every `update_period` steps. All streams start from the same seeded state (NAB runs a
    fresh, identically seeded detector per file)."""

    def __init__(self, input_size: int, columns: int = 2048, active_columns: int = 40, potential_pct: float = 0.8,
                 connected: float = 0.2, active_inc: float = 0.003, inactive_dec: float = 0.0005,
                 boost_strength: float = 0.0, duty_cycle_period: int = 1000, min_pct_overlap_duty: float = 0.001,
                 update_period: int = 50, seed: int = 1956, batch: int = 1,
                 device: torch.device | str = "cpu") -> None:
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
        delta = hebbian_delta(x.index_select(0, b)[:, : self.I], 1.0, self.inc, self.dec)
        delta = delta * self.potential.index_select(0, c)
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
