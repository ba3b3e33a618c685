"""Vision encoder: a ViT (Dosovitskiy et al. 2021). The guide's 7B row is ViT-L/16: 24 x 1024, 16 heads (~300M)."""

from __future__ import annotations

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.brain_ai.blocks import Transformer, check_heads


class VisionEncoder(nn.Module):
    """`images (B, C, H, W) -> tokens (B, 1 + H/p * W/p, dim)` (class token first)."""

    def __init__(self, image_size: int = 224, patch_size: int = 16, in_channels: int = 3, dim: int = 1024,
                 depth: int = 24, heads: int = 16, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        positive_int("model.net.vision.dim", dim)
        check_heads("model.net.vision", dim, heads)
        if image_size % patch_size:
            raise ValueError(f"model.net.vision.image_size={image_size} must be a multiple of patch_size={patch_size}")
        self.dim, self.image_size = dim, image_size
        self.patch = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        n_tokens = (image_size // patch_size) ** 2 + 1
        self.cls = nn.Parameter(torch.empty(1, 1, dim))
        self.pos = nn.Parameter(torch.empty(1, n_tokens, dim))
        self.body = Transformer(dim, depth, heads, mlp_ratio)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.body(x)
