"""Train-time augmentations of cached frames, applied to whole batches on the device.

They run after the cache (in `EventDataModule.on_after_batch_transfer`, training only), so the cached,
deterministic transform stays the same and evaluation data is never augmented. Batches are
`(batch, time, *features)` float tensors; each op draws per-sample randomness from torch's RNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from brainlab.core.errors import ConfigError


def _check_prob(key: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"data.augment {key} must be in [0, 1], got {p!r}")
    return float(p)


class TimeShift(nn.Module):
    """Shift each sample in time by up to `max_shift` bins either way, filling with empty frames."""

    def __init__(self, max_shift: int = 5) -> None:
        super().__init__()
        if max_shift < 0:
            raise ConfigError(f"data.augment TimeShift.max_shift must be >= 0, got {max_shift}")
        self.max_shift = int(max_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.max_shift == 0:
            return x
        b, t = x.shape[:2]
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (b, 1), device=x.device)
        src = torch.arange(t, device=x.device).unsqueeze(0) - shift  # (b, t): source bin of each bin
        valid = (src >= 0) & (src < t)
        src = src.clamp(0, t - 1)
        index = src.view(b, t, *([1] * (x.dim() - 2))).expand_as(x)
        out = torch.gather(x, 1, index)
        return out * valid.view(b, t, *([1] * (x.dim() - 2))).to(x.dtype)


class ChannelDrop(nn.Module):
    """Silence each input channel (feature position, all time steps) with probability `p`, per sample."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = _check_prob("ChannelDrop.p", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.rand(x.shape[0], 1, *x.shape[2:], device=x.device) >= self.p
        return x * keep.to(x.dtype)


class FrameNoise(nn.Module):
    """Add a spike at each (time, feature) position with probability `p` (background noise events)."""

    def __init__(self, p: float = 0.001) -> None:
        super().__init__()
        self.p = _check_prob("FrameNoise.p", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.rand_like(x) < self.p).to(x.dtype)


class RandomFlip(nn.Module):
    """Flip each sample along the feature `dims` (counted from the end, -1 = width) with probability `p`.

    Careful on DVS-Gesture: a left-right flip turns "left hand wave" into "right hand wave".
    """

    def __init__(self, dims: Sequence[int] = (-1,), p: float = 0.5) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        if any(d >= 0 for d in self.dims):
            raise ConfigError(f"data.augment RandomFlip.dims counts from the end (-1, -2), got {self.dims}")
        self.p = _check_prob("RandomFlip.p", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(x.shape[0], device=x.device) < self.p
        if not bool(flip.any()):
            return x
        out = x.clone()
        out[flip] = x[flip].flip(self.dims)
        return out


class Augment(nn.Module):
    """The configured augmentations in order."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        for op in ops:
            if not callable(op):
                raise ConfigError(f"data.augment entries must be augmentations (_target_), got {op!r}")
        self.ops = list(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x
