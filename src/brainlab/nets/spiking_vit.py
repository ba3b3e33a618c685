"""A Spikformer-style spiking vision transformer (Zhou et al., ICLR 2023) on the backend factory.

Spiking self-attention (SSA): Q, K, V are spikes (Linear -> BN -> spiking); attention is `Q K^T V * scale`
with no softmax (all terms non-negative), followed by a spiking layer of threshold `attn_threshold` (0.5 in
the paper) and a Linear -> BN -> spiking projection. Blocks: `x + SSA(x)`, then `x + MLP(x)` with a spiking
two-layer MLP. Spiking patch splitting (SPS) as in the paper: log2(`patch_size`) stages of conv3x3 -> BN -> spiking ->
max-pool 2, widths doubling up to `embed_dim`, plus the convolutional relative position embedding
(conv3x3 -> BN -> spiking, added). The head averages the tokens and reads out each step.

Input `(batch, C, H, W)` in [0, 1], encoded over `time_steps`; output `(batch, time, num_classes)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.conv_snn import PerStep
from brainlab.nets.encoding import ImageSNN
from brainlab.nets.sew_resnet import conv_bn


class LinearBN(nn.Module):
    """Linear then BatchNorm over the feature dim, for `(..., features)` token tensors."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)


class SpikingSelfAttention(nn.Module):
    """SSA on `(batch, time, tokens, dim)` spikes."""

    def __init__(self, dim: int, heads: int, scale: float, spiking: Callable[..., nn.Module],
                 attn_threshold: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale
        self.qkv = nn.ModuleList(nn.Sequential(LinearBN(dim, dim), spiking()) for _ in range(3))
        self.attn_spikes = spiking(spike_threshold=attn_threshold)
        self.proj = nn.Sequential(LinearBN(dim, dim), spiking())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        q, k, v = (f(x).reshape(b, t, n, self.heads, d // self.heads).transpose(2, 3) for f in self.qkv)
        out = (q @ k.transpose(-2, -1)) @ v * self.scale  # (b, t, heads, n, d/heads), no softmax
        return self.proj(self.attn_spikes(out.transpose(2, 3).reshape(b, t, n, d)))


class SpikformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, scale: float, spiking: Callable[..., nn.Module],
                 attn_threshold: float) -> None:
        super().__init__()
        hidden = max(1, int(dim * mlp_ratio))
        self.attn = SpikingSelfAttention(dim, heads, scale, spiking, attn_threshold)
        self.mlp = nn.Sequential(LinearBN(dim, hidden), spiking(), LinearBN(hidden, dim), spiking())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikingViT(ImageSNN):
    """`(batch, C, H, W)` -> `(batch, time, num_classes)`; spiking layers from `backend(**neuron)`."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        backend: Any,
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 8,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        attn_scale: float = 0.125,
        attn_threshold: float = 0.5,
        **image: Any,
    ) -> None:
        """`image`: the input encoding and neuron knobs every image net takes (`ImageSNN`)."""
        super().__init__("SpikingViT", input_shape, num_classes, backend, **image)
        c_in, height, width = self.input_shape
        patch = positive_int("model.net.patch_size", patch_size)
        dim = positive_int("model.net.embed_dim", embed_dim)
        positive_int("model.net.depth", depth)
        positive_int("model.net.heads", heads)
        if patch & (patch - 1) or height % patch or width % patch:
            raise ConfigError(f"model.net.patch_size={patch} must be a power of 2 dividing the image size "
                              f"{height}x{width}")
        if dim % heads or dim < 2:
            raise ConfigError(f"model.net.embed_dim={dim} must be a multiple of model.net.heads={heads}")
        if mlp_ratio <= 0 or attn_scale <= 0 or attn_threshold <= 0:
            raise ConfigError("model.net.mlp_ratio, attn_scale and attn_threshold must be > 0")
        spiking = self.spiking
        n_pools = patch.bit_length() - 1
        widths = [max(1, dim // 2 ** (n_pools - 1 - i)) for i in range(n_pools)] or [dim]
        self.stem_conv = conv_bn(c_in, widths[0], 3)
        sps: list[nn.Module] = [spiking()] + ([PerStep(nn.MaxPool2d(2))] if n_pools else [])
        for cin, cout in zip(widths, widths[1:], strict=False):
            sps += [PerStep(conv_bn(cin, cout, 3)), spiking(), PerStep(nn.MaxPool2d(2))]
        self.patchify = nn.Sequential(*sps)
        self.position = nn.Sequential(PerStep(conv_bn(dim, dim, 3)), spiking())
        self.blocks = nn.Sequential(*[SpikformerBlock(dim, heads, mlp_ratio, attn_scale, spiking, attn_threshold)
                                      for _ in range(depth)])
        self.readout = nn.Linear(dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        x = self.encoder.through(images, self.stem_conv)  # direct coding: the stem runs once
        x = self.patchify(x)
        x = x + self.position(x)  # (batch, time, dim, h, w)
        tokens = x.flatten(start_dim=3).transpose(2, 3)  # (batch, time, tokens, dim)
        tokens = self.blocks(tokens)
        return self.readout(tokens.mean(dim=2))
