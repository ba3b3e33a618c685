"""Transformer blocks shared by the parts, and the block classes FSDP wraps and checkpoints.

Every block is one FSDP unit (`trainer=fsdp` wraps per block) and one activation-checkpointing unit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.core.errors import ConfigError


def check_heads(key: str, dim: int, heads: int) -> None:
    if dim % heads:
        raise ConfigError(f"{key}: width {dim} must be divisible by its heads ({heads})")


class Attention(nn.Module):
    """Multi-head attention (queries from `x`, keys/values from `context`) with torch's fused SDPA."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        context_dim = context_dim or dim
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        context = x if context is None else context
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Sequential):
    def __init__(self, dim: int, ratio: float) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention + MLP (ViT, BERT, wav2vec2 layers)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask=key_mask)
        return x + self.mlp(self.norm2(x))


class CrossBlock(nn.Module):
    """Self-attention, then cross-attention to a `context` (e.g. the workspace slots), then MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, context_dim: int | None = None,
                 self_attention: bool = True) -> None:
        super().__init__()
        self.norm_s = nn.LayerNorm(dim) if self_attention else None
        self.self_attn = Attention(dim, heads) if self_attention else None
        self.norm_x, self.norm_c, self.norm_m = nn.LayerNorm(dim), nn.LayerNorm(context_dim or dim), nn.LayerNorm(dim)
        self.cross = Attention(dim, heads, context_dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.self_attn is not None and self.norm_s is not None:
            x = x + self.self_attn(self.norm_s(x), key_mask=key_mask)
        x = x + self.cross(self.norm_x(x), self.norm_c(context), key_mask=context_mask)
        return x + self.mlp(self.norm_m(x))


class Transformer(nn.Module):
    """`depth` blocks and a final norm: `(B, N, dim) -> (B, N, dim)`."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, key_mask=key_mask)
        return self.norm(x)
