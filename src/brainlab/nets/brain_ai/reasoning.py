"""Symbolic reasoning: multi-hop memory reading in the manner of phase 6's end-to-end memory network
(Sukhbaatar et al. 2015), over continuous memories (the workspace's tokens) instead of word bags.

A few controller vectors `u` (learned queries, initialised from the workspace slots) attend over the memory
each hop, `u <- u + o`, then `u <- u + MLP(u)`; every hop has its own key/value projections (MemN2N's
adjacent weights). The attention of every hop is returned: the model's proof over the tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.brain_ai.blocks import MLP, check_heads


class Hop(nn.Module):
    """One hop: `u (B, Q, dim)` reads `memory (B, N, dim)`; returns the new `u` and attention `(B, Q, N)`."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm_u, self.norm_m, self.norm_o = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, u: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        b, q_len, d = u.shape
        mem = self.norm_m(memory)
        q = self.q(self.norm_u(u)).view(b, q_len, self.heads, -1).transpose(1, 2)
        k = self.k(mem).view(b, -1, self.heads, d // self.heads).transpose(1, 2)
        v = self.v(mem).view(b, -1, self.heads, d // self.heads).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / (d // self.heads) ** 0.5
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
        p = F.softmax(scores.float(), dim=-1).to(v.dtype)
        o = (p @ v).transpose(1, 2).reshape(b, q_len, d)
        u = u + self.o(o)
        return u + self.mlp(self.norm_o(u)), p.mean(1)


class Reasoner(nn.Module):
    """`memory (B, N, dim), mask, slots (B, K, dim) -> (u (B, Q, dim), proof (B, hops, Q, N))`."""

    def __init__(self, dim: int, queries: int = 16, hops: int = 4, heads: int = 32, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        positive_int("model.net.reasoning.hops", hops)
        check_heads("model.net.reasoning", dim, heads)
        self.queries = nn.Parameter(torch.empty(positive_int("model.net.reasoning.queries", queries), dim))
        self.hops = nn.ModuleList(Hop(dim, heads, mlp_ratio) for _ in range(hops))
        self.norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.queries, std=0.02)

    def forward(self, memory: torch.Tensor, mask: torch.Tensor, slots: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.queries.unsqueeze(0) + slots.mean(1, keepdim=True)
        proofs = []
        for hop in self.hops:
            u, p = hop(u, memory, mask)
            proofs.append(p)
        return self.norm(u), torch.stack(proofs, 1)
