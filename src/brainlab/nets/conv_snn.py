"""A convolutional SNN for event frames: [Conv2d -> spiking -> pool] x N -> [Linear -> spiking] x M -> Linear.

Spiking layers come from the backend factory (`backend(**neuron)`), exactly as in `nets/snn.py`; the
stateless layers (conv, pool, linear) run on all time steps at once as `(batch * time, ...)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.snn import spiking_mlp


class PerStep(nn.Module):
    """Apply a stateless module to every time step: `(batch, time, *in)` -> `(batch, time, *out)`."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        y = self.module(x.reshape(b * t, *x.shape[2:]))
        return y.reshape(b, t, *y.shape[1:])


class ConvSNN(nn.Module):
    """`(batch, time, channels, height, width)` -> `(batch, time, num_classes)` output currents.

    `channels` lists the conv widths; each block is Conv2d(kernel_size, padding same) -> spiking ->
    pooling by `pool` (sum pooling keeps spike counts; `avg`/`max` also accepted). `input_pool` first
    reduces the frame size (e.g. 4 turns DVS-Gesture's 128x128 into 32x32). `n_hidden` Linear+spiking
    layers of `hidden_dim` follow the conv stack, then the Linear readout.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        backend: Any,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        pool_kind: str = "avg",
        input_pool: int = 1,
        hidden_dim: int = 128,
        n_hidden: int = 1,
        neuron: Mapping[str, Any] | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError("ConvSNN needs data.input_shape = [channels, height, width], "
                              f"got {list(input_shape)}")
        self.input_shape = tuple(positive_int("data.input_shape[]", int(d)) for d in input_shape)
        positive_int("model.net.num_classes", num_classes)
        positive_int("model.net.kernel_size", kernel_size)
        positive_int("model.net.pool", pool)
        positive_int("model.net.input_pool", input_pool)
        if not channels:
            raise ConfigError("model.net.channels must list at least one conv width")
        pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
        if pool_kind not in pools:
            raise ConfigError(f"model.net.pool_kind={pool_kind!r} is not supported; choose one of: avg, max")
        if not callable(backend):
            raise ConfigError("model.net.backend must be a neuron factory (set by the `backend` group)")
        neuron = dict(neuron or {})
        c, h, w = self.input_shape
        layers: list[nn.Module] = []
        if input_pool > 1:
            layers.append(PerStep(nn.AvgPool2d(input_pool)))
            h, w = h // input_pool, w // input_pool
        for width in channels:
            positive_int("model.net.channels[]", int(width))
            layers += [PerStep(nn.Conv2d(c, int(width), kernel_size, padding=kernel_size // 2, bias=bias)),
                       backend(**neuron)]
            if pool > 1:
                layers.append(PerStep(pools[pool_kind](pool)))
                h, w = h // pool, w // pool
            c = int(width)
        if h < 1 or w < 1:
            raise ConfigError(f"frames {list(self.input_shape)} are too small for {len(channels)} pooling "
                              f"blocks of {pool} (and input_pool {input_pool}): use fewer channels or pool=1")
        hidden = positive_int("model.net.hidden_dim", hidden_dim)
        if isinstance(n_hidden, bool) or not isinstance(n_hidden, int) or n_hidden < 0:
            raise ConfigError(f"model.net.n_hidden must be an integer >= 0, got {n_hidden!r}")
        layers.append(PerStep(nn.Flatten()))
        layers += spiking_mlp(c * h * w, hidden, n_hidden, num_classes, backend, neuron, bias)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(f"ConvSNN expects (batch, time, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.layers(x)
