"""The standard 4-block convolutional learner of few-shot learning (Vinyals et al. 2016; Finn et al. 2017).

Each block: 3x3 conv -> batch norm -> ReLU -> 2x2 max-pool. Batch norm uses the statistics of the batch
it sees (no running statistics, as in MAML's reference code), so it is a pure function of its parameters
and works under `torch.func.functional_call` / `vmap`. Input `(batch, channels, H, W)` -> logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from brainlab.core.checks import check_choice, positive_int

NORMS = ("batch", "none")


class BatchStatNorm2d(nn.Module):
    """Batch norm over the batch it sees, written with plain tensor ops (a per-channel affine after it).

    `nn.BatchNorm2d(track_running_stats=False)` computes the same forward, but its second-order gradient
    under `vmap` (MAML over a batch of tasks) disagrees with plain autograd; these ops' gradients do not.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def conv_block(in_channels: int, out_channels: int, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    if norm == "batch":
        layers.append(BatchStatNorm2d(out_channels))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """Four conv blocks of `hidden_dim` channels and a linear head of `num_classes` (the episode's ways)."""

    def __init__(
        self,
        num_classes: int = 5,
        in_channels: int = 1,
        hidden_dim: int = 64,
        image_size: int | Sequence[int] = 28,
        blocks: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        num_classes = positive_int("model.net.num_classes", num_classes)
        hidden_dim = positive_int("model.net.hidden_dim", hidden_dim)
        blocks = positive_int("model.net.blocks", blocks)
        check_choice("model.net.norm", norm, NORMS)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        channels = [positive_int("model.net.in_channels", in_channels)] + [hidden_dim] * blocks
        self.features = nn.Sequential(*(conv_block(a, b, norm) for a, b in zip(channels, channels[1:], strict=False)))
        with torch.no_grad():
            n_features = self.features(torch.zeros(2, in_channels, *size)).flatten(1).shape[1]
        self.head = nn.Linear(n_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
