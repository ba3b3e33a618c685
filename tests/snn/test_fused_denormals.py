"""The fused CPU backward flushes denormal gradients (issue 26): same gradients up to 1.2e-38, the caller's
floating-point mode untouched."""

from __future__ import annotations

import numpy as np
import torch

from brainlab.snn.fused import cpu as K
from brainlab.snn.fused import neuron


def _has_denormals(a: np.ndarray) -> bool:
    return bool(((a != 0) & (np.abs(a) < K.TINY)).any())


def test_membrane_backward_writes_no_denormals_and_restores_the_fp_mode() -> None:
    rng = np.random.default_rng(0)
    batch, steps, feats = 3, 40, 16
    vpre = (-200.0 * rng.random((batch, steps, feats))).astype(np.float32)  # far below threshold: tiny surrogate
    g_spikes = (1e-3 * rng.standard_normal((batch, steps, feats))).astype(np.float32)
    v0, alpha = np.zeros((batch, feats), np.float32), np.ones(feats, np.float32)
    g_u, g_v0, g_alpha = np.empty_like(vpre), np.empty_like(v0), np.empty_like(v0)
    args = (np.float32(1.0), K.SPIKE_MULTI, K.RESET_SUBTRACT, False, np.float32(0.0), True, np.float32(2.0),
            np.float32(-2.0), True, np.float32(1.0))
    K.membrane_backward(g_spikes, True, np.zeros_like(v0), vpre, g_u, v0, alpha, *args, g_u, g_v0, g_alpha)
    assert not _has_denormals(g_u) and not _has_denormals(g_v0)
    # float64 reference of the same reverse loop (IAF, subtract reset): equal up to float32 rounding and the flush
    sg = 2.0 * np.exp(-2.0 * np.abs(vpre.astype(np.float64) - 1.0))
    ref, g = np.empty(vpre.shape), np.zeros((batch, feats))
    for t in range(steps - 1, -1, -1):
        g = g + (g_spikes[:, t] - g) * sg[:, t]
        ref[:, t] = g
    assert np.allclose(g_u, ref, rtol=1e-3, atol=1e-30)
    tiny = np.float32(1e-30) * np.float32(1e-10)  # this thread still computes denormals
    assert tiny != 0 and _has_denormals(np.array([tiny]))


def test_fused_gradients_unchanged_by_the_flush() -> None:
    torch.manual_seed(0)
    layer = neuron("iaf")
    x = (torch.randn(4, 60, 8) * 3.0 - 20.0).requires_grad_()  # mostly far below threshold
    layer(x).sum().backward()
    g = x.grad.numpy()
    assert np.isfinite(g).all() and not _has_denormals(g)
