"""Images -> input over `T` time steps for spiking nets (`model.net.encoding`, `model.net.time_steps`).

- `direct`: the (normalised) analog image repeated at every step; the first layer turns it into current
  (Wu et al. 2019; SEW-ResNet and Spikformer use it). Nets may run their stateless stem once and repeat it.
- `rate`: Bernoulli spikes with probability = pixel intensity in [0, 1], drawn anew at every step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError

ENCODINGS = ("direct", "rate")


class ImageEncoder(nn.Module):
    """`(batch, C, H, W)` images in [0, 1] -> `(batch, T, C, H, W)`.

    `mean`/`std` (one value per channel, or null) normalise direct-coded images; rate coding uses the raw
    intensities as spike probabilities.
    """

    def __init__(self, kind: str = "direct", time_steps: int = 4, channels: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.kind = check_choice("model.net.encoding", kind, ENCODINGS)
        self.time_steps = positive_int("model.net.time_steps", time_steps)
        if (mean is None) != (std is None):
            raise ConfigError("model.net.mean and model.net.std go together: set both or neither")
        if mean is not None and std is not None:
            if len(mean) != channels or len(std) != channels or any(s <= 0 for s in std):
                raise ConfigError(f"model.net.mean/std need {channels} values (std > 0), got {list(mean)} / "
                                  f"{list(std)}")
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        else:
            self.mean = self.std = None

    def analog(self, images: torch.Tensor) -> torch.Tensor:
        """The direct-coded image of one step (normalised when mean/std are set)."""
        if self.mean is None:
            return images
        return (images - self.mean) / self.std

    def repeat(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, ...)` -> `(batch, T, ...)`, the same tensor at every step (a view, no copy)."""
        return x.unsqueeze(1).expand(x.shape[0], self.time_steps, *x.shape[1:])

    def through(self, images: torch.Tensor, stem: nn.Module) -> torch.Tensor:
        """`stem` (stateless, per image) applied to the encoded input: `(batch, T, *stem output)`.

        Direct coding runs it once and repeats its output (the same input at every step)."""
        if self.kind == "direct":
            return self.repeat(stem(self.analog(images))).contiguous()
        x = self(images)
        y = stem(x.flatten(0, 1))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"ImageEncoder expects (batch, channels, height, width), got {tuple(images.shape)}")
        if self.kind == "direct":
            return self.repeat(self.analog(images))
        probs = self.repeat(images.clamp(0.0, 1.0))
        return torch.bernoulli(probs)


class ImageSNN(nn.Module):
    """What the image nets share: the input shape, the encoder and the spiking-layer maker.

    `spiking(**override)` builds one layer with `backend(**neuron)` (overrides such as a layer's own
    `spike_threshold` on top); subclasses map `(batch, C, H, W)` to `(batch, time, num_classes)`.
    """

    def __init__(self, name: str, input_shape: Sequence[int], num_classes: int, backend: Any,
                 encoding: str = "direct", time_steps: int = 4, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"{name} needs data.input_shape = [channels, height, width], got {list(input_shape)}")
        self.name = name
        self.input_shape = tuple(positive_int("data.input_shape[]", int(d)) for d in input_shape)
        self.num_classes = positive_int("model.net.num_classes", num_classes)
        if not callable(backend):
            raise ConfigError("model.net.backend must be a neuron factory (set by the `backend` group)")
        self.backend, self.neuron = backend, dict(neuron or {})
        self.encoder = ImageEncoder(encoding, time_steps, self.input_shape[0], mean, std)

    def spiking(self, **override: Any) -> nn.Module:
        return self.backend(**{**self.neuron, **override})

    def check_input(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.name} expects (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(images.shape)}")
