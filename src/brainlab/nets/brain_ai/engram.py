"""Engram memory: a conditional lookup memory (hashed n-gram embeddings gated into the residual stream).

For every text position t and n-gram order n, the ids `t-n+1 .. t` are hashed by `heads` independent
multiplicative-XOR hashes into rows of large embedding tables (one table per order and head, stored as one
`nn.Embedding` with offsets). The rows found are concatenated into `e_t`, and a context-dependent gate
`sigmoid(<norm(h_t), norm(W_k e_t)> / sqrt(dim))` decides how much of `W_v e_t` enters the residual stream at t.
Lookups cost O(1) per token whatever the table size: capacity without compute (the 7B row: ~800M).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError


class Engram(nn.Module):
    """`(h (B, L, dim), ids (B, L), mask (B, L)) -> gated memory (B, L, dim)` to add to `h`."""

    def __init__(self, dim: int, orders: Sequence[int] = (2, 3), heads: int = 4, rows: int = 382_021,
                 head_dim: int = 256, seed: int = 20260) -> None:
        super().__init__()
        self.orders = tuple(int(n) for n in orders)
        if not self.orders or min(self.orders) < 1:
            raise ConfigError(f"model.net.engram.orders must be n-gram orders >= 1, got {list(orders)}")
        self.heads = positive_int("model.net.engram.heads", heads)
        self.rows = positive_int("model.net.engram.rows", rows)
        self.head_dim = positive_int("model.net.engram.head_dim", head_dim)
        self.seed = seed
        n_tables = len(self.orders) * heads
        self.table = nn.Embedding(n_tables * rows, head_dim)
        width = n_tables * head_dim
        self.key = nn.Linear(width, dim, bias=False)
        self.value = nn.Linear(width, dim, bias=False)
        self.register_buffer("multipliers", torch.empty(n_tables, max(self.orders), dtype=torch.long))
        self.register_buffer("offsets", torch.arange(n_tables, dtype=torch.long) * rows)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Odd random hash multipliers below 2**31 (products of ids < 2**31 stay inside int64)."""
        if self.multipliers.is_meta:
            return
        g = torch.Generator().manual_seed(self.seed)
        mult = torch.randint(1, 2**30, self.multipliers.shape, generator=g) * 2 + 1
        self.multipliers.copy_(mult.to(self.multipliers.device))
        self.offsets.copy_(torch.arange(self.offsets.numel(), device=self.offsets.device) * self.rows)

    def rows_of(self, ids: torch.Tensor) -> torch.Tensor:
        """Table rows `(B, L, tables)` of the n-grams ending at every position (ids before 0 are 0)."""
        ids = ids.long() + 1  # 0 stays free for "before the start"
        cols, t = [], 0
        for n in self.orders:
            padded = F.pad(ids, (n - 1, 0))
            grams = padded.unfold(-1, n, 1)  # (B, L, n): oldest first
            for _ in range(self.heads):
                h = torch.zeros_like(ids)
                for j in range(n):
                    h = h ^ (grams[..., j] * self.multipliers[t, j])
                cols.append(h.remainder(self.rows) + self.offsets[t])
                t += 1
        return torch.stack(cols, -1)

    def forward(self, h: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        e = self.table(self.rows_of(ids)).flatten(-2)  # (B, L, tables * head_dim)
        k = F.normalize(self.key(e), dim=-1)
        gate = torch.sigmoid((F.normalize(h, dim=-1) * k).sum(-1, keepdim=True) * h.shape[-1] ** 0.5 / 4)
        out = gate * self.value(e)
        return out if mask is None else out * mask.unsqueeze(-1).to(out.dtype)
