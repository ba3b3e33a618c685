"""Compiled CPU kernels of the fused backend's richer neurons: adaptive threshold (ALIF), recurrent weight on
the spikes, synaptic current and input normalisation inside the state loop (numba, cached on disk).

Same layouts and float32 arithmetic as sinabs, operation for operation (`cpu.py` holds the plain IAF/LIF
kernels, which these reuse). One time step, per neuron:

    cur = x + rec                      (recurrent: rec = W @ spikes of the previous step, zero at the start)
    i = asyn * (i + cur); cur = i      (tau_syn)
    cur = (1 - am) * cur               (LIF / ALIF: sinabs's norm_input)
    v = am * v + cur                   (saved as vpre)
    th = thr + ascale * b              (ALIF; b saved as bpre) else thr
    s = spike(v, th); v = reset(v, s, th)
    b = aa * b + (1 - aa) * s          (ALIF)
    v = relu(v - min_v) + min_v        (min_v_mem)

The backward is one reverse-time pass per batch row that also returns per-row gradients of the decay factors;
the recurrent weight's gradient is one matmul done by torch afterwards.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from brainlab.snn.fused.cpu import RESET_SUBTRACT, _after_spike, _spike, fast_denormals_on, restore_fp

_ZERO = np.float32(0.0)


@nb.njit(cache=True, inline="always")
def _event_matvec(vals, mat, out):  # noqa: ANN001, ANN202
    """`out[n] = sum_m vals[m] * mat[m, n]`, adding only the rows of nonzero `vals` (event-driven)."""
    out[:] = _ZERO
    for m in range(len(vals)):
        s = vals[m]
        if s != _ZERO:
            for n in range(len(out)):
                out[n] += s * mat[m, n]


@nb.njit(cache=True, nogil=True)
def neuron_forward(  # noqa: ANN201
    x, v0, i0, b0, am, om_am, asyn, aa, om_aa, wt, thr, ascale, spike_mode, reset_mode, has_min, min_v,
    norm, has_syn, adaptive, recurrent, spikes, vpre, bpre, tot, isyn, v_out, i_out, b_out,
):  # noqa: ANN001
    """The state loop; `wt` is the recurrent weight transposed (row m = what spike m adds to each neuron)."""
    batch, steps, feats = x.shape
    for b in range(batch):
        v = v0[b].copy()
        i = i0[b].copy()
        bb = b0[b].copy()
        rec = np.zeros(feats, dtype=np.float32)
        for t in range(steps):
            for n in range(feats):
                cur = x[b, t, n]
                if recurrent:
                    cur = cur + rec[n]
                    tot[b, t, n] = cur
                if has_syn:
                    i[n] = asyn[n] * (i[n] + cur)
                    cur = i[n]
                    isyn[b, t, n] = cur
                if norm:
                    cur = om_am[n] * cur
                xv = am[n] * v[n] + cur
                vpre[b, t, n] = xv
                th = thr
                if adaptive:
                    bpre[b, t, n] = bb[n]
                    th = thr + ascale * bb[n]
                s = _spike(xv, th, spike_mode)
                spikes[b, t, n] = s
                if adaptive:
                    bb[n] = aa[n] * bb[n] + om_aa[n] * s
                v[n], _ = _after_spike(xv, s, th, reset_mode, has_min, min_v)
            if recurrent:  # event-driven: only spiking neurons add their weight column
                _event_matvec(spikes[b, t], wt, rec)
        v_out[b] = v
        i_out[b] = i
        b_out[b] = bb


@nb.njit(cache=True, nogil=True)
def neuron_backward(  # noqa: ANN201
    g_spikes, g_v_last, g_i_last, g_b_last, cur_in, spikes, vpre, bpre, isyn, sg, v0, i0, b0, am, om_am, asyn,
    aa, om_aa, w, thr, ascale, reset_mode, has_min, min_v, norm, has_syn, adaptive, recurrent,
    g_x, g_v0, g_i0, g_b0, g_am, g_asyn, g_aa,
):  # noqa: ANN001
    """Reverse-time pass of `neuron_forward`; `sg` is the surrogate d spike / d v at every step (from torch),
    `cur_in` the layer's total input per step (input plus recurrent current). Runs with flush-to-zero
    (`cpu.fast_denormals_on`: denormal gradients are ~100x slower and flushed anyway)."""
    batch, steps, feats = vpre.shape
    fp = fast_denormals_on()
    for b in range(batch):
        gv = g_v_last[b].copy()
        gi = g_i_last[b].copy()
        gb = g_b_last[b].copy()
        ga_m = np.zeros(feats, dtype=np.float32)
        ga_s = np.zeros(feats, dtype=np.float32)
        ga_a = np.zeros(feats, dtype=np.float32)
        grec = np.zeros(feats, dtype=np.float32)
        for t in range(steps - 1, -1, -1):
            for n in range(feats):
                xv = vpre[b, t, n]
                s = spikes[b, t, n]
                th = thr + ascale * bpre[b, t, n] if adaptive else thr
                g = gv[n]
                _, free = _after_spike(xv, s, th, reset_mode, has_min, min_v)
                if not free:
                    g = _ZERO
                gs = g_spikes[b, t, n]
                if recurrent:
                    gs += grec[n]
                if adaptive:
                    gs += om_aa[n] * gb[n]
                if reset_mode == RESET_SUBTRACT:
                    gx = g + (gs - th * g) * sg[b, t, n]
                    g_th = -s * g
                else:
                    gx = (g if s == _ZERO else _ZERO) + gs * sg[b, t, n]
                    g_th = _ZERO
                if adaptive:
                    ga_a[n] += gb[n] * (bpre[b, t, n] - s)
                    gb[n] = aa[n] * gb[n] + ascale * g_th
                if t > 0:
                    xp, sp = vpre[b, t - 1, n], spikes[b, t - 1, n]
                    thp = thr + ascale * bpre[b, t - 1, n] if adaptive else thr
                    vprev, _ = _after_spike(xp, sp, thp, reset_mode, has_min, min_v)
                else:
                    vprev = v0[b, n]
                ga_m[n] += gx * vprev
                gv[n] = am[n] * gx
                cur = isyn[b, t, n] if has_syn else cur_in[b, t, n]
                if norm:
                    ga_m[n] -= gx * cur
                    gc = om_am[n] * gx
                else:
                    gc = gx
                if has_syn:
                    g_tot = gc + gi[n]
                    iprev = isyn[b, t - 1, n] if t > 0 else i0[b, n]
                    ga_s[n] += g_tot * (iprev + cur_in[b, t, n])
                    g_tot = asyn[n] * g_tot
                    gi[n] = g_tot
                else:
                    g_tot = gc
                g_x[b, t, n] = g_tot
            if recurrent:  # the current into step t came from the spikes of step t - 1 through W
                _event_matvec(g_x[b, t], w, grec)
        g_v0[b] = gv
        g_i0[b] = gi
        g_b0[b] = gb
        g_am[b] = ga_m
        g_asyn[b] = ga_s
        g_aa[b] = ga_a
    restore_fp(fp)
