"""backend=fused's Triton kernels verified without a GPU, and the `backend.kernel` knob.

The kernels run on CPU under Triton's interpreter in a subprocess (`fused_triton_cases.py`): the variable
`TRITON_INTERPRET=1` must be set before Triton defines the kernels, so it cannot be switched on inside this
session. On a GPU the same comparisons run compiled (`pytest -m gpu`, test_fused_backend.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from brainlab.core.errors import ConfigError
from brainlab.snn import fused
from brainlab.snn.plug import factory

HAS_TRITON = importlib.util.find_spec("triton") is not None
CASES = Path(__file__).with_name("fused_triton_cases.py")


@pytest.mark.heavy
@pytest.mark.triton
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton (in the dev extra: pip install -e .[dev])")
def test_triton_kernels_equal_sinabs_and_numba_under_the_interpreter() -> None:
    """Every neuron setting, forward and backward, through `backend.kernel=triton` on CPU tensors."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "TRITON_DEFAULT_FP_FUSION": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(CASES)], env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-4000:]}"
    assert proc.stdout.startswith("ok:"), proc.stdout
    print(f"{proc.stdout.strip()}; subprocess {took:.1f}s")


def test_kernel_knob_defaults_to_auto_and_numba_runs_on_cpu() -> None:
    layer = factory("fused")(kind="lif", tau_mem=5.0, tau_syn=3.0)
    assert layer.kernel == "auto"
    x = torch.randn(2, 12, 4) * 4 + 0.3
    forced = fused.neuron(kind="lif", tau_mem=5.0, tau_syn=3.0, kernel="numba")
    assert "kernel=numba" in repr(forced)
    assert torch.equal(layer(x), forced(x)), "auto on CPU is the numba path"


def test_kernel_knob_refuses_unknown_values_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"backend.kernel='cuda' is not supported; choose one of: auto, numba, "
                                          r"triton") as err:
        fused.neuron(kind="iaf", kernel="cuda")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine kernel=triton is valid at setup")
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="the interpreter is on in this session")
def test_triton_on_cpu_without_the_interpreter_is_refused_at_setup() -> None:
    with pytest.raises(ConfigError) as err:
        fused.neuron(kind="iaf", kernel="triton")
    message = str(err.value)
    assert "\n" not in message
    if HAS_TRITON:
        assert message.startswith("backend.kernel=triton runs Triton kernels, which need CUDA tensors")
        assert "TRITON_INTERPRET=1" in message and "backend.kernel=auto" in message
    else:
        assert "need Triton" in message
