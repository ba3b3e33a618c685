"""numba's CPU target for brainlab's compiled kernels: full-width (512-bit) vectors on AVX-512 CPUs.

LLVM's x86 tuning prefers 256-bit vectors even where AVX-512 is present (a clock-speed hedge for the first AVX-512
server CPUs), while torch's own kernels (oneDNN, MKL) use the full width on the same CPUs, so the fused and event
kernels ran at half their vector width beside the dense baseline they are compared with. Measured on a 2-vCPU
Emerald Rapids VM: the fused membrane backward (128 x 250 x 128) 3.0 -> 1.75 ms, the blog model's training step with
the event synapse 8-10 % faster. `configure()` (run by `import brainlab`, before numba is imported) sets
`NUMBA_CPU_FEATURES` to the host's own features without that preference. Every vector lane computes the same IEEE
operation as before, so results are bit-identical; only the speed changes (numba caches the kernels per feature set).

Left alone: a `NUMBA_CPU_FEATURES` already set, numba already imported (its target is fixed then), a CPU without
AVX-512, or `BRAINLAB_NUMBA_VECTORS=default` (numba's own choice).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OPT_OUT = "BRAINLAB_NUMBA_VECTORS"
FULL_WIDTH = "-prefer-256-bit"


def _cpu_may_have_avx512() -> bool:
    """A cheap first look (Linux: the flags in /proc/cpuinfo) before asking LLVM, which costs ~25 ms to load."""
    info = Path("/proc/cpuinfo")
    if not sys.platform.startswith("linux") or not info.exists():
        return True  # ask LLVM
    try:
        return " avx512f" in info.read_text()
    except OSError:
        return False


def full_width_features() -> str | None:
    """The host's LLVM feature string without the 256-bit preference, or None on a CPU without AVX-512."""
    if not _cpu_may_have_avx512():
        return None
    try:  # a platform where LLVM cannot tell (it raises there) keeps numba's own choice; `import brainlab` never fails
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
    except (ImportError, OSError, RuntimeError):
        return None
    if not features.get("avx512f"):
        return None
    return f"{features.flatten()},{FULL_WIDTH}"


def configure() -> str | None:
    """Point numba at full-width vectors (see the module docstring); returns the feature string set, or None."""
    if os.environ.get(OPT_OUT, "").lower() == "default" or "NUMBA_CPU_FEATURES" in os.environ:
        return None
    if "numba" in sys.modules:
        return None
    features = full_width_features()
    if features:
        os.environ["NUMBA_CPU_FEATURES"] = features
    return features


def numba_vectors() -> str:
    """How numba's vector width was chosen in this process (what the benches record)."""
    features = os.environ.get("NUMBA_CPU_FEATURES")
    if features is None:
        return "numba default"
    return "full width (brainlab.core.jit)" if features.endswith(FULL_WIDTH) else "NUMBA_CPU_FEATURES set by the user"
