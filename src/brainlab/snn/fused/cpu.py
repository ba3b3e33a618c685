"""Compiled CPU kernels of the fused backend (numba, cached on disk after the first compile).

Layouts: input/outputs `(batch, time, features)` float32 C-contiguous, states `(batch, features)`, per-feature
decay factors `(features,)`. The forward reproduces sinabs's float32 arithmetic operation for operation
(`v = alpha * v + u`, `trunc(v / thr)`, `v - s * thr`, `relu(v - min) + min`), so spikes are bit-identical.
The backward is one reverse-time pass per neuron, recomputing spikes and resets from the saved pre-reset
membrane potentials. Kernels release the GIL and `snn.parallel.rows_in_parallel` splits the batch over threads
(cheaper to compile than numba's `parallel=True`, which took ~10x longer).
"""

from __future__ import annotations

import platform

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

SPIKE_MULTI, SPIKE_SINGLE = 0, 1
RESET_SUBTRACT, RESET_ZERO = 0, 1

_ZERO = np.float32(0.0)
#: smallest normal float32: the backward flushes gradients below it to zero (denormal operands make every later
#: pass over them, the numba reverse loop and the Linear layers' BLAS gradients, several times slower)
TINY = np.float32(np.finfo(np.float32).tiny)

# The backward kernels run with the SSE control register's flush-to-zero and denormals-are-zero bits set and
# restore it before returning (so nothing leaks into torch or the caller's thread): gradients through neurons far
# below threshold are products of the surrogate's tiny tail (~1e-38) and ordinary gradients, each a denormal that
# costs ~100 cycles without them. Results differ from strict IEEE only below float32's smallest normal (1.2e-38).
# x86 only (elsewhere a no-op; the explicit `_flush` still keeps the written gradients free of denormals).
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_FTZ_DAZ = np.uint32(0x8040)


def _mxcsr_call(builder, name: str, slot):  # noqa: ANN001, ANN202
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p]), name)
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def _get_fp_control(typingctx):  # noqa: ANN001, ANN202
    """The MXCSR register (0 off x86)."""

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        if not _X86:
            return ir.Constant(ir.IntType(32), 0)
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _set_fp_control(typingctx, value):  # noqa: ANN001, ANN202
    """Load `value` into the MXCSR register (nothing off x86)."""

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        if _X86:
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.none(types.uint32), codegen


@nb.njit(cache=True, inline="always")
def fast_denormals_on():  # noqa: ANN201
    """Set flush-to-zero / denormals-are-zero on this thread; returns the old control word for `restore_fp`."""
    old = _get_fp_control()
    _set_fp_control(old | _FTZ_DAZ)
    return old


@nb.njit(cache=True, inline="always")
def restore_fp(old):  # noqa: ANN001, ANN201
    _set_fp_control(old)


@nb.njit(cache=True, inline="always")
def _spike(v: np.float32, thr: np.float32, spike_mode: int) -> np.float32:
    if spike_mode == SPIKE_MULTI:
        if v > _ZERO:
            return np.trunc(v / thr)
        return _ZERO
    if v - thr >= _ZERO:
        return np.float32(1.0)
    return _ZERO


@nb.njit(cache=True, inline="always")
def _flush(g: np.float32) -> np.float32:
    """`g`, or zero where it is denormal (a select, so loops over it still vectorise)."""
    return g if np.abs(g) >= TINY else _ZERO


@nb.njit(cache=True, inline="always")
def _after_spike(v, s, thr, reset_mode, has_min, min_v):  # noqa: ANN001, ANN202
    """Membrane after reset and the optional lower bound; also whether the bound was inactive."""
    if reset_mode == RESET_SUBTRACT:
        v = v - s * thr
    elif s != _ZERO:
        v = _ZERO
    free = True
    if has_min:
        d = v - min_v
        if d > _ZERO:
            v = d + min_v
        else:
            v = min_v
            free = False
    return v, free


# exp(y) for y <= 0 in plain float arithmetic so numba vectorises it (libm's expf is a scalar call, ~6x slower
# here): Cody-Waite range reduction, Cephes's degree-6 polynomial (about 1 ulp), 2**k built in the exponent bits.
_LOG2E, _LN2_HI, _LN2_LO = np.float32(1.4426950408889634), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                   1.6666665459e-1, 5.0000001201e-1))
_Y_MIN = np.float32(-87.0)  # exp(-87) ~ 1.6e-38: still a normal float32; anything lower is clamped to it


@nb.njit(cache=True, inline="always")
def _exp_neg_parts(y):  # noqa: ANN001, ANN202
    """`exp(y) = poly * 2**k` for y <= 0: returns (poly, biased exponent bits of 2**k)."""
    y = max(y, _Y_MIN)
    k = np.floor(y * _LOG2E + np.float32(0.5))
    r = y - k * _LN2_HI - k * _LN2_LO
    p = _P[0]
    p = p * r + _P[1]
    p = p * r + _P[2]
    p = p * r + _P[3]
    p = p * r + _P[4]
    p = p * r + _P[5]
    return p * r * r + r + np.float32(1.0), (np.int32(k) + np.int32(127)) << np.int32(23)


@nb.njit(cache=True, nogil=True)
def exp_neg(y):  # noqa: ANN001, ANN201
    """Vectorised exp of a 1-D float32 array of non-positive values (tested against np.exp)."""
    poly = np.empty_like(y)
    bits = np.empty(y.shape, dtype=np.int32)
    for n in range(len(y)):
        poly[n], bits[n] = _exp_neg_parts(y[n])
    return poly * bits.view(np.float32)


@nb.njit(cache=True, nogil=True)
def membrane_forward(u, v0, alpha, thr, spike_mode, reset_mode, has_min, min_v, in_scale, spikes, vpre, v_out):  # noqa: ANN001,E501
    """Run the state loop; writes spikes, pre-reset potentials and the final state. The input current is
    `in_scale * u` (LIF's norm_input `1 - alpha` folded in, the same float32 product torch takes; 1 for IAF)."""
    batch, steps, feats = u.shape
    plain = spike_mode == SPIKE_MULTI and reset_mode == RESET_SUBTRACT and not has_min
    for b in range(batch):
        v = v0[b].copy()
        for t in range(steps):
            if plain:  # the default neuron, written branch-free so it vectorises
                for n in range(feats):
                    x = alpha[n] * v[n] + in_scale * u[b, t, n]
                    vpre[b, t, n] = x
                    s = np.trunc(x / thr) if x > _ZERO else _ZERO
                    spikes[b, t, n] = s
                    v[n] = x - s * thr
                continue
            for n in range(feats):
                x = alpha[n] * v[n] + in_scale * u[b, t, n]
                vpre[b, t, n] = x
                s = _spike(x, thr, spike_mode)
                spikes[b, t, n] = s
                v[n], _ = _after_spike(x, s, thr, reset_mode, has_min, min_v)
        v_out[b] = v


@nb.njit(cache=True, nogil=True, fastmath={"contract"})  # fused multiply-adds: gradients, not spikes
def membrane_backward(  # noqa: ANN201
    g_spikes, g_every_step, g_vout, vpre, surrogate, v0, alpha, thr, spike_mode, reset_mode, has_min, min_v,
    exp_inline, exp_scale, exp_rate, need_alpha, in_scale, g_u, g_v0, g_alpha,
):  # noqa: ANN001
    """One reverse-time pass: gradients of input current, initial state and (per batch row) decay.

    `surrogate` holds d spike / d v at each pre-reset potential (vectorised by torch, see fused.py); it may
    be the same array as `g_u` (each element is read before it is overwritten). With `exp_inline` it is
    not read: sinabs's SingleExponential `exp_scale * exp(exp_rate * |v - thr|)` is computed in place.
    Runs with flush-to-zero (`fast_denormals_on`) and writes no denormal gradients (`_flush`).
    `g_u` is the gradient of the unscaled input (`in_scale * d v`, see `membrane_forward`); `in_scale` must be 1
    with `need_alpha` (the decay's gradient reads `g_u`). Without `g_every_step`, `g_spikes` is `(batch, 1, feats)`:
    the same gradient at every step (a loss on the spikes summed over time), read in place of a full-size copy.
    """
    batch, steps, feats = vpre.shape
    plain = reset_mode == RESET_SUBTRACT and not has_min  # no spike recomputation needed
    fp = fast_denormals_on()
    for b in range(batch):
        g_post = g_vout[b].copy()
        g_a = np.zeros_like(v0[b])
        poly = np.empty(feats, dtype=np.float32)
        bits = np.empty(feats, dtype=np.int32)
        scale = bits.view(np.float32)
        for t in range(steps - 1, -1, -1):
            tg = t if g_every_step else 0
            if plain and exp_inline:
                for n in range(feats):  # two vectorised passes: exp's parts, then the gradient
                    poly[n], bits[n] = _exp_neg_parts(np.abs(vpre[b, t, n] - thr) * exp_rate)
                for n in range(feats):
                    g = g_post[n]
                    sg = exp_scale * (poly[n] * scale[n])
                    gx = g + (g_spikes[b, tg, n] - thr * g) * sg
                    gx = _flush(gx)
                    g_u[b, t, n] = _flush(in_scale * gx)
                    g_post[n] = alpha[n] * gx
            elif plain:
                for n in range(feats):
                    g = g_post[n]
                    gx = g + (g_spikes[b, tg, n] - thr * g) * surrogate[b, t, n]
                    gx = _flush(gx)
                    g_u[b, t, n] = _flush(in_scale * gx)
                    g_post[n] = alpha[n] * gx
            else:
                for n in range(feats):
                    x = vpre[b, t, n]
                    s = _spike(x, thr, spike_mode)
                    g = g_post[n]
                    if has_min:
                        _, free = _after_spike(x, s, thr, reset_mode, has_min, min_v)
                        if not free:
                            g = _ZERO
                    if exp_inline:
                        sg = exp_scale * np.exp(np.abs(x - thr) * exp_rate)
                    else:
                        sg = surrogate[b, t, n]
                    if reset_mode == RESET_SUBTRACT:
                        gx = g + (g_spikes[b, tg, n] - thr * g) * sg
                    else:
                        gx = (g if s == _ZERO else _ZERO) + g_spikes[b, tg, n] * sg
                    gx = _flush(gx)
                    g_u[b, t, n] = _flush(in_scale * gx)
                    g_post[n] = alpha[n] * gx
            if need_alpha:
                for n in range(feats):
                    if t > 0:
                        xp = vpre[b, t - 1, n]
                        prev, _ = _after_spike(xp, _spike(xp, thr, spike_mode), thr, reset_mode, has_min, min_v)
                    else:
                        prev = v0[b, n]
                    g_a[n] += g_u[b, t, n] * prev
        g_v0[b] = g_post
        g_alpha[b] = g_a
    restore_fp(fp)


@nb.njit(cache=True, nogil=True)
def synapse_forward(x, i0, alpha, out):  # noqa: ANN001, ANN201
    """sinabs's synaptic current: `i = alpha * (i + x)` per step."""
    batch, steps, feats = x.shape
    for b in range(batch):
        cur = i0[b].copy()
        for t in range(steps):
            for n in range(feats):
                cur[n] = alpha[n] * (cur[n] + x[b, t, n])
                out[b, t, n] = cur[n]


@nb.njit(cache=True, nogil=True)
def synapse_backward(g_out, x, out, i0, alpha, g_x, g_i0, g_alpha):  # noqa: ANN001, ANN201
    """Reverse pass of `synapse_forward` (gradient of the last step includes the carried state's)."""
    batch, steps, feats = x.shape
    for b in range(batch):
        g_cur = np.zeros_like(i0[b])
        g_a = np.zeros_like(i0[b])
        for t in range(steps - 1, -1, -1):
            for n in range(feats):
                g = g_cur[n] + g_out[b, t, n]
                prev = out[b, t - 1, n] if t > 0 else i0[b, n]
                g_a[n] += g * (prev + x[b, t, n])
                g_x[b, t, n] = alpha[n] * g
                g_cur[n] = alpha[n] * g
        g_i0[b] = g_cur
        g_alpha[b] = g_a
