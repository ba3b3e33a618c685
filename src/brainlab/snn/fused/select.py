"""`backend.kernel=auto|numba|triton`: which compute path the fused backend's layers run.

`auto` runs the Triton kernels (`triton.py`) on CUDA tensors and the numba kernels (`cpu.py`, `ext_cpu.py`) on CPU
tensors; `numba` and `triton` force one path and refuse tensors it cannot run. Triton runs CPU tensors only under
its interpreter (`TRITON_INTERPRET=1` set before the kernels are imported), which is how the tests run the Triton
kernels, forward and backward, through the same autograd functions as on a GPU.
"""

from __future__ import annotations

from types import ModuleType

import torch

from brainlab.core.checks import check_choice
from brainlab.core.errors import ConfigError

KERNELS = ("auto", "numba", "triton")


def check_kernel(kernel: str) -> str:
    """Validate `backend.kernel` at setup; `triton` is refused at once where it can never run."""
    check_choice("backend.kernel", kernel, KERNELS)
    if kernel == "triton":
        kernels = triton_kernels()
        if not kernels.INTERPRETED and not torch.cuda.is_available():
            raise ConfigError(_NO_CPU_TRITON)
    return kernel


def triton_kernels() -> ModuleType:
    """The Triton kernel module (a ConfigError carrying the real import error when Triton is missing)."""
    from brainlab.snn.fused import triton as kernels

    return kernels


_NO_CPU_TRITON = (
    "backend.kernel=triton runs Triton kernels, which need CUDA tensors (on CPU only under Triton's interpreter: "
    "TRITON_INTERPRET=1 set before import, as the tests do); use backend.kernel=auto or backend.kernel=numba on CPU"
)


def use_triton(t: torch.Tensor, kernel: str) -> bool:
    """Whether this call runs the Triton kernels for tensors like `t` (refusing a path that cannot run them)."""
    if kernel == "auto":
        return t.is_cuda
    if kernel == "numba":
        if t.is_cuda:
            raise ConfigError(
                "backend.kernel=numba runs the CPU kernels, got CUDA tensors; use backend.kernel=auto or "
                "backend.kernel=triton on CUDA"
            )
        return False
    if not t.is_cuda and not triton_kernels().INTERPRETED:
        raise ConfigError(_NO_CPU_TRITON)
    return True

