"""Audio encoder in wav2vec2's shape (Baevski et al. 2020): a convolutional feature encoder over the raw
waveform, a feature projection, a convolutional relative position embedding, then a transformer.

wav2vec2-large: 7 convolutions of 512 channels (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2: one frame per
20 ms at 16 kHz), position convolution of kernel 128 in 16 groups, 24 layers x 1024 wide, 16 heads (~315M).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.brain_ai.blocks import Transformer, check_heads


class ConvFeatureEncoder(nn.Module):
    """`waveform (B, samples) -> features (B, frames, channels)`; group norm after the first layer."""

    def __init__(self, channels: int, kernels: Sequence[int], strides: Sequence[int]) -> None:
        super().__init__()
        if len(kernels) != len(strides) or not kernels:
            raise ValueError("model.net.audio.conv_kernels and conv_strides must be non-empty and of equal length")
        layers: list[nn.Module] = []
        c_in = 1
        for i, (k, s) in enumerate(zip(kernels, strides, strict=True)):
            layers.append(nn.Conv1d(c_in, channels, k, stride=s, bias=False))
            if i == 0:
                layers.append(nn.GroupNorm(channels, channels))
            layers.append(nn.GELU())
            c_in = channels
        self.layers = nn.Sequential(*layers)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.layers(wave.unsqueeze(1)).transpose(1, 2)


class AudioEncoder(nn.Module):
    """`waveform (B, samples) -> tokens (B, frames, dim)`."""

    def __init__(self, conv_channels: int = 512, conv_kernels: Sequence[int] = (10, 3, 3, 3, 3, 2, 2),
                 conv_strides: Sequence[int] = (5, 2, 2, 2, 2, 2, 2), dim: int = 1024, depth: int = 24,
                 heads: int = 16, mlp_ratio: float = 4.0, pos_conv_kernel: int = 128,
                 pos_conv_groups: int = 16) -> None:
        super().__init__()
        positive_int("model.net.audio.dim", dim)
        check_heads("model.net.audio", dim, heads)
        self.dim = dim
        self.features = ConvFeatureEncoder(conv_channels, list(conv_kernels), list(conv_strides))
        self.project = nn.Sequential(nn.LayerNorm(conv_channels), nn.Linear(conv_channels, dim))
        self.pos_conv = nn.Conv1d(dim, dim, pos_conv_kernel, padding=pos_conv_kernel // 2, groups=pos_conv_groups)
        self.body = Transformer(dim, depth, heads, mlp_ratio)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.project(self.features(wave))
        pos = self.pos_conv(x.transpose(1, 2))[..., : x.shape[1]]
        return self.body(x + nn.functional.gelu(pos).transpose(1, 2))
