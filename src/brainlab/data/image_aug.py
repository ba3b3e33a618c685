"""Train-time image augmentations: kornia ops on whole batches, on the device, after the cache.

The cache keeps the deterministic decode (resize + centre crop, uint8); `ImageDataModule` turns every batch
into float images in [0, 1] and, in training only, runs these ops (`data.augment` or `model.augment`: lists of
`_target_: kornia.augmentation.<Op>` entries), e.g. RandomResizedCrop, RandomHorizontalFlip, ColorJitter.
Each op draws per-sample randomness from torch's RNG, so seeded runs repeat.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from brainlab.core.errors import ConfigError


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..255 from a packed cache) images -> float32 in [0, 1]."""
    return images.to(torch.float32) / 255.0


class ImageAugment(nn.Module):
    """The configured ops in order on `(batch, channels, height, width)` floats in [0, 1].

    An op must keep the image shape (a RandomResizedCrop's `size` must equal `data.image_size`), so cached
    evaluation images and augmented training images reach the net with the same shape.
    """

    def __init__(self, ops: Sequence[nn.Module] | None = None, key: str = "data.augment") -> None:
        super().__init__()
        ops = list(ops or [])
        for op in ops:
            if not isinstance(op, nn.Module):
                raise ConfigError(f"{key} entries must be augmentations (`_target_: kornia.augmentation.<Op>`), "
                                  f"got {op!r}")
        self.ops = nn.ModuleList(ops)
        self.key = key

    def __len__(self) -> int:
        return len(self.ops)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = images
        for op in self.ops:
            try:
                out = op(out)
            except (RuntimeError, ValueError, AssertionError) as exc:
                raise ConfigError(f"{self.key}: {type(op).__name__} cannot run on images of shape "
                                  f"{tuple(images.shape)}: {exc}") from None
            if out.shape != images.shape:
                raise ConfigError(f"{self.key}: {type(op).__name__} changed the image shape "
                                  f"{tuple(images.shape)} -> {tuple(out.shape)}; set its size to data.image_size")
        return out.clamp_(0.0, 1.0)
