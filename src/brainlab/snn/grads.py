"""Gradient layouts the CPU layers pass each other without copying."""

from __future__ import annotations

import torch


def same_at_every_step(grad: torch.Tensor) -> bool:
    """Whether `grad` (batch, time, features) is one gradient broadcast over time (stride 0: the output was summed
    over time by the loss), which the CPU backwards read as it is instead of a full-size copy."""
    return grad.dim() == 3 and grad.shape[1] > 1 and grad.stride(1) == 0
