"""Text encoder: a bidirectional transformer over token ids.

The guide lists ~2B parameters "32 layers x 4096 wide, 32 heads", but that shape has ~6.4B; the count is
followed (REFERENCE.md): the 7B preset uses 24 layers x 2560 wide, 20 heads of 128, MLP 4x, vocabulary 32,000
(~1.97B). Token ids feed the engram memory's n-gram keys too.
"""

from __future__ import annotations

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.brain_ai.blocks import Transformer, check_heads


class TextEncoder(nn.Module):
    """`ids (B, L)`, `mask (B, L)` (True = real token) `-> tokens (B, L, dim)`."""

    def __init__(self, vocab_size: int = 32000, max_len: int = 2048, dim: int = 2560, depth: int = 24,
                 heads: int = 20, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        positive_int("model.net.text.vocab_size", vocab_size)
        check_heads("model.net.text", dim, heads)
        self.dim, self.vocab_size, self.max_len = dim, vocab_size, max_len
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.empty(1, max_len, dim))
        self.body = Transformer(dim, depth, heads, mlp_ratio)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if ids.shape[1] > self.max_len:
            raise ValueError(f"text of {ids.shape[1]} tokens is longer than model.net.text.max_len={self.max_len}")
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        return self.body(x, key_mask=mask)
