"""brainlab.core.jit: numba's target on AVX-512 CPUs (full-width vectors), its opt-outs, and the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from brainlab.core import jit
from brainlab.core.jit import FULL_WIDTH, configure, full_width_features

HOST_FULL_WIDTH = full_width_features()

# the fused neuron's spikes and gradients and the event synapse's output and weight gradient, as exact values
KERNELS = """
import json, brainlab, numba, torch
from brainlab.snn import fused
from brainlab.snn.event_linear import EventLinear
torch.manual_seed(0)
layer, syn = fused.neuron(kind="iaf"), EventLinear(40, 24)
x = ((torch.rand(6, 50, 40) < 0.1).float() * 2).requires_grad_()
spikes = layer(syn(x) * 3)
(spikes.sum(1) * torch.randn(6, 24)).sum().backward()
print(json.dumps({"features": numba.config.CPU_FEATURES,
                  "values": [t.flatten().tolist() for t in (spikes, x.grad, syn.weight.grad, syn.bias.grad)]}))
"""


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_FEATURES", "BRAINLAB_NUMBA_VECTORS")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=600, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_import_sets_full_width_before_numba() -> None:
    expected = str(HOST_FULL_WIDTH) if HOST_FULL_WIDTH else "None"
    assert _run("import brainlab, numba; print(numba.config.CPU_FEATURES)") == expected


def test_configure_respects_the_opt_outs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # as before numba is imported (only its presence counts)
    monkeypatch.setenv("BRAINLAB_NUMBA_VECTORS", "default")
    assert configure() is None and "NUMBA_CPU_FEATURES" not in os.environ
    monkeypatch.delenv("BRAINLAB_NUMBA_VECTORS")
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2")  # the user's own choice stays
    assert configure() is None and os.environ["NUMBA_CPU_FEATURES"] == "+avx2"
    monkeypatch.delenv("NUMBA_CPU_FEATURES")
    assert configure() == HOST_FULL_WIDTH
    assert os.environ.get("NUMBA_CPU_FEATURES") == HOST_FULL_WIDTH
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.setitem(sys.modules, "numba", object())  # numba already imported: its target is fixed, left alone
    assert configure() is None and "NUMBA_CPU_FEATURES" not in os.environ


def test_a_cpu_llvm_cannot_read_keeps_numbas_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import llvmlite.binding as llvm

    def refuse() -> None:
        raise RuntimeError("failed to get host cpu features")

    monkeypatch.setattr(llvm, "get_host_cpu_features", refuse)
    monkeypatch.setattr(jit, "_cpu_may_have_avx512", lambda: True)
    assert full_width_features() is None


@pytest.mark.skipif(HOST_FULL_WIDTH is None, reason="needs a CPU with AVX-512")
def test_full_width_kernels_give_the_same_numbers() -> None:
    full = json.loads(_run(KERNELS))
    default = json.loads(_run(KERNELS, BRAINLAB_NUMBA_VECTORS="default"))
    assert full["features"].endswith(FULL_WIDTH) and default["features"] is None
    assert sum(full["values"][0]) > 0
    assert full["values"] == default["values"]
