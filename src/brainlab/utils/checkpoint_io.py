"""Checkpoints written atomically on local disks (Lightning's own save goes through a temp file in /tmp and a move,
which across filesystems is a copy: a full disk then leaves a truncated checkpoint under its final name)."""

from __future__ import annotations

from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.types import _PATH
from typing_extensions import override

from brainlab.core.atomic import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` into a temp file beside the checkpoint, flush + fsync, `os.replace`; remote paths
    (s3://, gs://...) keep Lightning's own save."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path) and not str(path).startswith("file://"):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_open(str(path).removeprefix("file://"), "wb") as fh:
            torch.save(checkpoint, fh)


__all__ = ["AtomicCheckpointIO"]
