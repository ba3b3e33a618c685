"""HTM layer: a spatial pooler (Hawkins et al., BAMI) over the SNN core's spikes, learning by its own rule.

Permanences are an int16 *buffer* `(columns, input_bits)` in units of 1e-4 (-1 = not in the column's potential
pool): never a parameter, so they are outside the optimizer and outside FSDP's flat parameters, and integer,
so mixed precision never casts them (FSDP casts floating buffers only). Each token activates the top-k
columns by overlap with the connected synapses (permanence >= `connected`); after the optimizer step
`apply_learning()` applies the NAB spatial pooler's Hebbian rule (`nets.htm.spatial_pooler.hebbian_delta`: +inc
on active inputs, -dec on inactive ones) to the winners, summed over the batch's tokens and all-reduced over
data-parallel ranks, so every replica stays identical.
The active columns are read out (a trained low-rank projection) into the residual stream. The guide's 7B row:
16K columns (~200M, most of it permanences).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.htm.spatial_pooler import hebbian_delta

SCALE = 10_000  # permanence units per 1.0


class HTMLayer(nn.Module):
    """`spikes (B, N, input_bits) -> (readout (B, N, dim), active columns (B, N, columns) as 0/1)`."""

    rule_buffers = ("permanence",)

    def __init__(self, input_bits: int, dim: int, columns: int = 16384, sparsity: float = 0.02,
                 potential_pct: float = 0.8, connected: float = 0.5, active_inc: float = 0.003,
                 inactive_dec: float = 0.0005, readout_rank: int = 512, seed: int = 1956) -> None:
        super().__init__()
        self.input_bits = positive_int("model.net.htm.input_bits", input_bits)
        self.columns = positive_int("model.net.htm.columns", columns)
        if not 0 < sparsity < 1 or not 0 < potential_pct <= 1 or not 0 < connected < 1:
            raise ConfigError("model.net.htm: sparsity and connected must be in (0, 1), potential_pct in (0, 1]")
        self.k = max(1, round(sparsity * columns))
        self.potential_pct, self.seed = potential_pct, seed
        self.connected = round(connected * SCALE)
        self.inc, self.dec = round(active_inc * SCALE), round(inactive_dec * SCALE)
        self.register_buffer("permanence", torch.empty(columns, input_bits, dtype=torch.int16))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.readout = nn.Sequential(nn.Linear(columns, readout_rank, bias=False), nn.Linear(readout_rank, dim))
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Potential pool of `potential_pct` inputs per column, permanences uniform around `connected`."""
        if self.permanence.is_meta:
            return
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        for start in range(0, self.columns, 1024):  # in chunks: the full random matrix can be large
            rows = min(1024, self.columns - start)
            pot = torch.rand(rows, self.input_bits, generator=g) < self.potential_pct
            perm = self.connected + (torch.rand(rows, self.input_bits, generator=g) - 0.5) * 0.2 * SCALE
            chunk = torch.where(pot, perm.round(), torch.full_like(perm, -1)).to(torch.int16)
            self.permanence[start:start + rows] = chunk.to(self.permanence.device)
        self.updates.zero_()

    def connected_synapses(self, dtype: torch.dtype) -> torch.Tensor:
        return (self.permanence >= self.connected).to(dtype)

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # overlaps are integer counts: exact in float32 (up to 2**24), not in bf16/fp16, so never autocast
        with torch.no_grad(), torch.autocast(spikes.device.type, enabled=False):
            bits = (spikes.detach() > 0).float()
            overlap = bits @ self.connected_synapses(torch.float32).t()
            # ties (e.g. silent input) broken by a fixed per-column order, so k columns always win
            tie = torch.arange(self.columns, device=overlap.device, dtype=overlap.dtype) * 1e-6
            winners = (overlap + tie).topk(self.k, dim=-1).indices
            active = torch.zeros_like(overlap).scatter_(-1, winners, 1.0)
            if self.training:
                self._pending = (bits.reshape(-1, self.input_bits), active.reshape(-1, self.columns))
        return self.readout(active.to(self.readout[0].weight.dtype)), active

    @torch.no_grad()
    def apply_learning(self) -> None:
        """The spatial pooler's Hebbian rule for the last training batch (call after the optimizer step)."""
        if self._pending is None:
            return
        bits, active = self._pending
        self._pending = None
        co = active.t().float() @ bits.float()  # (columns, inputs): times a winner saw the input on
        wins = active.float().sum(0)
        if dist.is_available() and dist.is_initialized():
            stats = torch.cat([co.flatten(), wins])
            dist.all_reduce(stats)
            co, wins = stats[: co.numel()].view_as(co), stats[co.numel():]
        delta = hebbian_delta(co, wins[:, None], self.inc, self.dec)
        pot = self.permanence >= 0
        new = (self.permanence.float() + delta).clamp_(0, SCALE)
        self.permanence.copy_(torch.where(pot, new, self.permanence.float()).to(torch.int16))
        self.updates += 1
