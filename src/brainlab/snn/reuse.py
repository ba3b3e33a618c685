"""Buffers a layer writes every step, kept between steps: `BufferSlot`, and a layer's named slots, `Workspace`.

torch's CPU allocator hands large tensors back to the C allocator, which returns the pages to the operating system;
the next step's tensor of the same size is then mapped afresh and every 4 KiB page faults on first write (measured on
a 2-core VM: the fused membrane kernel spent 3 of its 5 ms per layer in those faults). A slot hands out the same
buffer again once nothing but the slot refers to it: no tensor, view, saved-for-backward reference or NumPy array
shares its storage. Otherwise (the graph of an earlier step still alive, another shape) it allocates a new one.
"""

from __future__ import annotations

import sys
from typing import Any

import torch


def unshared(t: torch.Tensor) -> bool:
    """Whether only this tensor object refers to its memory (no other handle, view, array or saved reference).
    False where torch cannot tell (the counts are torch internals): then every step allocates, as torch would."""
    try:  # the storage's count includes the temporary storage object made to ask it
        return t._use_count() == 1 and torch._C._storage_Use_Count(t.untyped_storage()._cdata) == 2
    except (AttributeError, RuntimeError):
        return False


class BufferSlot:
    """One reusable buffer (see the module docstring): the last one `take` handed out; never part of a module's state
    or copies."""

    def __init__(self) -> None:
        self._buf: torch.Tensor | None = None

    def take(self, like: torch.Tensor | None = None, *, shape: tuple[int, ...] | None = None,
             dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """An uninitialised contiguous tensor of `like`'s shape, dtype and device (or those given): the kept one
        when it is free, else a new one, which the slot keeps for the next step."""
        shape = tuple(like.shape if shape is None else shape)
        dtype = dtype or (like.dtype if like is not None else torch.float32)
        device = torch.device(device or (like.device if like is not None else "cpu"))
        buf, self._buf = self._buf, None
        # sys.getrefcount: `buf` and its own argument, so no Python name anywhere else holds this tensor object
        if (buf is None or tuple(buf.shape) != shape or buf.dtype != dtype or buf.device != device
                or (buf.is_inference() and not torch.is_inference_mode_enabled())  # autograd cannot save it
                or sys.getrefcount(buf) != 2 or not unshared(buf)):
            buf = torch.empty(shape, dtype=dtype, device=device)
        self._buf = buf
        return buf

    def __deepcopy__(self, memo: dict[int, Any]) -> BufferSlot:
        return BufferSlot()

    def __getstate__(self) -> dict[str, Any]:
        return {"_buf": None}


class Workspace:
    """A layer's named `BufferSlot`s, made on first use (`workspace["vpre"].take(like)`)."""

    def __init__(self) -> None:
        self._slots: dict[str, BufferSlot] = {}

    def __getitem__(self, name: str) -> BufferSlot:
        return self._slots.setdefault(name, BufferSlot())

    def __deepcopy__(self, memo: dict[int, Any]) -> Workspace:
        return Workspace()

    def __getstate__(self) -> dict[str, Any]:
        return {"_slots": {}}
