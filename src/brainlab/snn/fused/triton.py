"""Triton kernels of the fused backend (imported when a layer runs them: CUDA tensors or `backend.kernel=triton`).

One program per block of neurons loops over time, like the CPU kernels in `cpu.py`. To keep spikes
bit-identical to sinabs (which runs separate torch ops), products and sums use `mul.rn` / `add.rn` (never
contracted into FMA) and the spike count uses IEEE division. Under Triton's interpreter (`TRITON_INTERPRET=1` set
before this module is imported) the kernels run on CPU tensors with numpy: inline PTX cannot run there, so the two
rounding helpers are plain float32 `*` and `+`, which numpy already rounds once each (no contraction). The choice
is made once, when the kernels are defined; the compiled GPU code is the same either way. Tested on CPU under the
interpreter (`pytest -m triton`) and on a GPU (`pytest -m gpu`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from brainlab.core.errors import ConfigError

try:
    import triton
    import triton.language as tl
except ImportError as err:  # pragma: no cover - depends on the install
    raise ConfigError(
        f"backend=fused's Triton kernels need Triton ({type(err).__name__}: {err}); install it with "
        "`pip install triton` (it ships with the CUDA builds of torch)"
    ) from err

BLOCK = 128
TINY = tl.constexpr(1.1754943508222875e-38)  # float32's smallest normal: gradients below it are flushed (cpu.TINY)
# Read by Triton when `@triton.jit` runs (import time); read here at the same moment so the two always agree.
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
# The device helpers the kernels call: compiled, ordinary `@triton.jit` functions (inlined into each kernel). The
# interpreter runs kernels as Python and re-patches triton.language on every nested jit call (~3 ms each, most of a
# test's time), so there they are the plain Python functions they are.
_device = (lambda fn: fn) if INTERPRETED else triton.jit
# Zeros are written `tl.full(shape, 0.0, tl.float32)`: `tl.zeros` is itself such a nested jit function returning that
# `full`, so the compiled kernels are the same and the interpreter is spared a re-patch per call.

if INTERPRETED:  # inline PTX cannot run on the CPU; numpy rounds each float32 `*` and `+` once (no contraction)

    def _mul_rn(a, b):  # noqa: ANN001, ANN202
        return a * b

    def _add_rn(a, b):  # noqa: ANN001, ANN202
        return a + b

else:

    @triton.jit
    def _mul_rn(a, b):
        return tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=tl.float32,
                                         is_pure=True, pack=1)

    @triton.jit
    def _add_rn(a, b):
        return tl.inline_asm_elementwise("add.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=tl.float32,
                                         is_pure=True, pack=1)


@_device
def _spike(v, thr, SPIKE_MODE: tl.constexpr):
    if SPIKE_MODE == 0:
        s = tl.where(v > 0.0, tl.floor(tl.fdiv(v, thr, ieee_rounding=True)), 0.0)
    else:
        s = tl.where(v - thr >= 0.0, 1.0, 0.0)
    return s


@_device
def _after_spike(v, s, thr, min_v, RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr):
    if RESET_MODE == 0:
        v = v - _mul_rn(s, thr)
    else:
        v = tl.where(s != 0.0, 0.0, v)
    free = v == v
    if HAS_MIN:
        d = v - min_v
        free = d > 0.0
        v = tl.where(free, d, 0.0) + min_v
    return v, free


@_device
def _flat_lanes(n_rows, feats, BLOCK: tl.constexpr):
    """This program's block of the flat `(rows, features)` neurons: offsets, mask, batch row and neuron index."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < n_rows * feats, offs // feats, offs % feats


@triton.jit
def _membrane_fwd(u, v0, alpha, spikes, vpre, v_out, n_rows, steps, feats, thr, min_v,
                  SPIKE_MODE: tl.constexpr, RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, b, n = _flat_lanes(n_rows, feats, BLOCK)
    v = tl.load(v0 + offs, mask=mask, other=0.0)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    for t in range(steps):
        idx = (b * steps + t) * feats + n
        x = _add_rn(_mul_rn(a, v), tl.load(u + idx, mask=mask, other=0.0))
        tl.store(vpre + idx, x, mask=mask)
        s = _spike(x, thr, SPIKE_MODE)
        tl.store(spikes + idx, s, mask=mask)
        v, _ = _after_spike(x, s, thr, min_v, RESET_MODE, HAS_MIN)
    tl.store(v_out + offs, v, mask=mask)


@triton.jit
def _membrane_bwd(g_spikes, g_vout, vpre, sg, v0, alpha, g_u, g_v0, g_alpha, n_rows, steps, feats, thr, min_v,
                  SPIKE_MODE: tl.constexpr, RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr,
                  NEED_ALPHA: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, b, n = _flat_lanes(n_rows, feats, BLOCK)
    g_post = tl.load(g_vout + offs, mask=mask, other=0.0)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    g_a = tl.full([BLOCK], 0.0, tl.float32)
    for i in range(steps):
        t = steps - 1 - i
        idx = (b * steps + t) * feats + n
        x = tl.load(vpre + idx, mask=mask, other=0.0)
        s = _spike(x, thr, SPIKE_MODE)
        _, free = _after_spike(x, s, thr, min_v, RESET_MODE, HAS_MIN)
        g = tl.where(free, g_post, 0.0)
        surrogate = tl.load(sg + idx, mask=mask, other=0.0)
        gs = tl.load(g_spikes + idx, mask=mask, other=0.0)
        if RESET_MODE == 0:
            gx = g + (gs - thr * g) * surrogate
        else:
            gx = tl.where(s == 0.0, g, 0.0) + gs * surrogate
        gx = tl.where(tl.abs(gx) >= TINY, gx, 0.0)  # as the numba kernel: no denormal gradients (cpu.TINY)
        tl.store(g_u + idx, gx, mask=mask)
        if NEED_ALPHA:
            if t > 0:
                xp = tl.load(vpre + idx - feats, mask=mask, other=0.0)
                prev, _prev_free = _after_spike(xp, _spike(xp, thr, SPIKE_MODE), thr, min_v, RESET_MODE, HAS_MIN)
            else:
                prev = tl.load(v0 + offs, mask=mask, other=0.0)
            g_a += gx * prev
        g_post = a * gx
    tl.store(g_v0 + offs, g_post, mask=mask)
    tl.store(g_alpha + offs, g_a, mask=mask)


@triton.jit
def _synapse_fwd(x, i0, alpha, out, n_rows, steps, feats, BLOCK: tl.constexpr):
    offs, mask, b, n = _flat_lanes(n_rows, feats, BLOCK)
    cur = tl.load(i0 + offs, mask=mask, other=0.0)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    for t in range(steps):
        idx = (b * steps + t) * feats + n
        cur = _mul_rn(a, _add_rn(cur, tl.load(x + idx, mask=mask, other=0.0)))
        tl.store(out + idx, cur, mask=mask)


@triton.jit
def _synapse_bwd(g_out, x, out, i0, alpha, g_x, g_i0, g_alpha, n_rows, steps, feats, BLOCK: tl.constexpr):
    offs, mask, b, n = _flat_lanes(n_rows, feats, BLOCK)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    g_cur = tl.full([BLOCK], 0.0, tl.float32)
    g_a = tl.full([BLOCK], 0.0, tl.float32)
    for i in range(steps):
        t = steps - 1 - i
        idx = (b * steps + t) * feats + n
        g = g_cur + tl.load(g_out + idx, mask=mask, other=0.0)
        if t > 0:
            prev = tl.load(out + idx - feats, mask=mask, other=0.0)
        else:
            prev = tl.load(i0 + offs, mask=mask, other=0.0)
        g_a += g * (prev + tl.load(x + idx, mask=mask, other=0.0))
        tl.store(g_x + idx, a * g, mask=mask)
        g_cur = a * g
    tl.store(g_i0 + offs, g_cur, mask=mask)
    tl.store(g_alpha + offs, g_a, mask=mask)


def _check(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.dtype != torch.float32:
            raise ConfigError(f"backend=fused CUDA kernels take float32 tensors, got {t.dtype}")


def _grid(rows: int, feats: int) -> tuple[int]:
    return (triton.cdiv(rows * feats, BLOCK),)


def membrane_forward(u: torch.Tensor, v0: torch.Tensor, alpha: torch.Tensor, cfg: Any, spikes: torch.Tensor,
                     vpre: torch.Tensor, v_out: torch.Tensor) -> None:
    _check(u, v0, alpha)
    rows, steps, feats = u.shape
    _membrane_fwd[_grid(rows, feats)](
        u, v0, alpha, spikes, vpre, v_out, rows, steps, feats, cfg.thr, cfg.min_v,
        SPIKE_MODE=cfg.spike_mode, RESET_MODE=cfg.reset_mode, HAS_MIN=cfg.has_min, BLOCK=BLOCK,
    )


def membrane_backward(g_spikes: torch.Tensor, g_last: torch.Tensor, vpre: torch.Tensor, sg: torch.Tensor,
                      v0: torch.Tensor, alpha: torch.Tensor, cfg: Any, need_alpha: bool, g_u: torch.Tensor,
                      g_v0: torch.Tensor, g_alpha: torch.Tensor) -> None:
    _check(g_spikes, g_last, vpre, sg)
    rows, steps, feats = vpre.shape
    _membrane_bwd[_grid(rows, feats)](
        g_spikes, g_last, vpre, sg, v0, alpha, g_u, g_v0, g_alpha, rows, steps, feats, cfg.thr, cfg.min_v,
        SPIKE_MODE=cfg.spike_mode, RESET_MODE=cfg.reset_mode, HAS_MIN=cfg.has_min, NEED_ALPHA=need_alpha,
        BLOCK=BLOCK,
    )


def synapse_forward(x: torch.Tensor, i0: torch.Tensor, alpha: torch.Tensor, out: torch.Tensor) -> None:
    _check(x, i0, alpha)
    rows, steps, feats = x.shape
    _synapse_fwd[_grid(rows, feats)](x, i0, alpha, out, rows, steps, feats, BLOCK=BLOCK)


def synapse_backward(g_out: torch.Tensor, x: torch.Tensor, out: torch.Tensor, i0: torch.Tensor,
                     alpha: torch.Tensor, g_x: torch.Tensor, g_i0: torch.Tensor, g_alpha: torch.Tensor) -> None:
    _check(g_out, x)
    rows, steps, feats = x.shape
    _synapse_bwd[_grid(rows, feats)](g_out, x, out, i0, alpha, g_x, g_i0, g_alpha, rows, steps, feats, BLOCK=BLOCK)


# --- ALIF / recurrent neurons (see ext_cpu.py for the equations; same operation order) ---------------------

MAX_RECURRENT = 1024  # a recurrent layer runs one program per batch row holding every neuron


@_device
def _row_lanes(feats, BLOCK_N: tl.constexpr):
    """This program's batch row, its neurons, their mask and their offsets in a `(batch, features)` state."""
    row = tl.program_id(0)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = n < feats
    return row, n, mask, row * feats + n


@_device
def _load_state(v, i, b, st, mask):
    return tl.load(v + st, mask=mask, other=0.0), tl.load(i + st, mask=mask, other=0.0), tl.load(b + st, mask=mask,
                                                                                                 other=0.0)


@_device
def _load_decays(am, om_am, asyn, aa, om_aa, n, mask):
    """The per-neuron decay factors of this program's neurons."""
    return (tl.load(am + n, mask=mask, other=1.0), tl.load(om_am + n, mask=mask, other=0.0),
            tl.load(asyn + n, mask=mask, other=1.0), tl.load(aa + n, mask=mask, other=0.0),
            tl.load(om_aa + n, mask=mask, other=1.0))


@_device
def _step_matvec(vec, mat, n, mask, feats, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    """`sum_m vec[m] * mat[m, n]` for this program's neurons `n`: `vec` is the whole row of this step, written by
    every program's neurons, so it is read back after a barrier."""
    tl.debug_barrier()
    acc = tl.full([BLOCK_N], 0.0, tl.float32)
    for m0 in range(0, feats, BLOCK_M):
        m = m0 + tl.arange(0, BLOCK_M)
        m_ok = m < feats
        v_m = tl.load(vec + m, mask=m_ok, other=0.0)
        w = tl.load(mat + m[:, None] * feats + n[None, :], mask=m_ok[:, None] & mask[None, :], other=0.0)
        acc += tl.sum(v_m[:, None] * w, axis=0)
    return acc


@triton.jit
def _neuron_fwd(x, v0, i0, b0, am, om_am, asyn, aa, om_aa, wt, spikes, vpre, bpre, tot, isyn, v_out, i_out, b_out,
                steps, feats, thr, ascale, min_v,
                SPIKE_MODE: tl.constexpr, RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr, NORM: tl.constexpr,
                HAS_SYN: tl.constexpr, ADAPTIVE: tl.constexpr, RECURRENT: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_M: tl.constexpr):
    row, n, mask, st = _row_lanes(feats, BLOCK_N)
    v, i, bb = _load_state(v0, i0, b0, st, mask)
    a_m, o_m, a_s, a_a, o_a = _load_decays(am, om_am, asyn, aa, om_aa, n, mask)
    rec = tl.full([BLOCK_N], 0.0, tl.float32)
    for t in range(steps):
        base = (row * steps + t) * feats
        idx = base + n
        cur = tl.load(x + idx, mask=mask, other=0.0)
        if RECURRENT:
            cur = _add_rn(cur, rec)
            tl.store(tot + idx, cur, mask=mask)
        if HAS_SYN:
            i = _mul_rn(a_s, _add_rn(i, cur))
            cur = i
            tl.store(isyn + idx, cur, mask=mask)
        if NORM:
            cur = _mul_rn(o_m, cur)
        xv = _add_rn(_mul_rn(a_m, v), cur)
        tl.store(vpre + idx, xv, mask=mask)
        th = tl.full([BLOCK_N], 0.0, tl.float32) + thr
        if ADAPTIVE:
            tl.store(bpre + idx, bb, mask=mask)
            th = _add_rn(_mul_rn(tl.full([BLOCK_N], 0.0, tl.float32) + ascale, bb), th)
        s = _spike(xv, th, SPIKE_MODE)
        tl.store(spikes + idx, s, mask=mask)
        if ADAPTIVE:
            bb = _add_rn(_mul_rn(a_a, bb), _mul_rn(o_a, s))
        v, _ = _after_spike(xv, s, th, min_v, RESET_MODE, HAS_MIN)
        if RECURRENT:  # rec[n] = sum_m wt[m, n] * s[m]: every neuron's spike of this step
            rec = _step_matvec(spikes + base, wt, n, mask, feats, BLOCK_N, BLOCK_M)
    tl.store(v_out + st, v, mask=mask)
    tl.store(i_out + st, i, mask=mask)
    tl.store(b_out + st, bb, mask=mask)


@triton.jit
def _neuron_bwd(g_spikes, g_vl, g_il, g_bl, cur_in, spikes, vpre, bpre, isyn, sg, v0, i0, am, om_am, asyn, aa, om_aa,
                w, g_x, g_v0, g_i0, g_b0, g_am, g_asyn, g_aa, steps, feats, thr, ascale, min_v,
                RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr, NORM: tl.constexpr, HAS_SYN: tl.constexpr,
                ADAPTIVE: tl.constexpr, RECURRENT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    row, n, mask, st = _row_lanes(feats, BLOCK_N)
    gv, gi, gb = _load_state(g_vl, g_il, g_bl, st, mask)
    a_m, o_m, a_s, a_a, o_a = _load_decays(am, om_am, asyn, aa, om_aa, n, mask)
    ga_m = tl.full([BLOCK_N], 0.0, tl.float32)
    ga_s = tl.full([BLOCK_N], 0.0, tl.float32)
    ga_a = tl.full([BLOCK_N], 0.0, tl.float32)
    grec = tl.full([BLOCK_N], 0.0, tl.float32)
    for k in range(steps):
        t = steps - 1 - k
        base = (row * steps + t) * feats
        idx = base + n
        xv = tl.load(vpre + idx, mask=mask, other=0.0)
        s = tl.load(spikes + idx, mask=mask, other=0.0)
        th = tl.full([BLOCK_N], 0.0, tl.float32) + thr
        if ADAPTIVE:
            b_t = tl.load(bpre + idx, mask=mask, other=0.0)
            th = _add_rn(_mul_rn(tl.full([BLOCK_N], 0.0, tl.float32) + ascale, b_t), th)
        _, free = _after_spike(xv, s, th, min_v, RESET_MODE, HAS_MIN)
        g = tl.where(free, gv, 0.0)
        gs = tl.load(g_spikes + idx, mask=mask, other=0.0)
        if RECURRENT:
            gs += grec
        if ADAPTIVE:
            gs += o_a * gb
        surrogate = tl.load(sg + idx, mask=mask, other=0.0)
        if RESET_MODE == 0:
            gx = g + (gs - th * g) * surrogate
            g_th = -s * g
        else:
            gx = tl.where(s == 0.0, g, 0.0) + gs * surrogate
            g_th = tl.full([BLOCK_N], 0.0, tl.float32)
        if ADAPTIVE:
            ga_a += gb * (b_t - s)
            gb = a_a * gb + ascale * g_th
        if t > 0:
            xp = tl.load(vpre + idx - feats, mask=mask, other=0.0)
            sp = tl.load(spikes + idx - feats, mask=mask, other=0.0)
            thp = tl.full([BLOCK_N], 0.0, tl.float32) + thr
            if ADAPTIVE:
                thp = _add_rn(_mul_rn(tl.full([BLOCK_N], 0.0, tl.float32) + ascale,
                                      tl.load(bpre + idx - feats, mask=mask, other=0.0)), thp)
            vprev, _prev_free = _after_spike(xp, sp, thp, min_v, RESET_MODE, HAS_MIN)
        else:
            vprev = tl.load(v0 + st, mask=mask, other=0.0)
        ga_m += gx * vprev
        gv = a_m * gx
        if HAS_SYN:
            cur = tl.load(isyn + idx, mask=mask, other=0.0)
        else:
            cur = tl.load(cur_in + idx, mask=mask, other=0.0)
        if NORM:
            ga_m -= gx * cur
            gc = o_m * gx
        else:
            gc = gx
        if HAS_SYN:
            g_tot = gc + gi
            if t > 0:
                iprev = tl.load(isyn + idx - feats, mask=mask, other=0.0)
            else:
                iprev = tl.load(i0 + st, mask=mask, other=0.0)
            ga_s += g_tot * (iprev + tl.load(cur_in + idx, mask=mask, other=0.0))
            g_tot = a_s * g_tot
            gi = g_tot
        else:
            g_tot = gc
        tl.store(g_x + idx, g_tot, mask=mask)
        if RECURRENT:  # grec[m] = sum_n w[n, m] * g_tot[n] for the step before
            grec = _step_matvec(g_x + base, w, n, mask, feats, BLOCK_N, BLOCK_M)
    tl.store(g_v0 + st, gv, mask=mask)
    tl.store(g_i0 + st, gi, mask=mask)
    tl.store(g_b0 + st, gb, mask=mask)
    tl.store(g_am + st, ga_m, mask=mask)
    tl.store(g_asyn + st, ga_s, mask=mask)
    tl.store(g_aa + st, ga_a, mask=mask)


def _ext_launch(rows: int, feats: int, recurrent: bool) -> tuple[tuple[int, int], int, int]:
    """Grid and block sizes: recurrent layers keep a whole row in one program (all spikes of a step)."""
    if not recurrent:
        return (rows, triton.cdiv(feats, BLOCK)), BLOCK, 16
    if feats > MAX_RECURRENT:
        raise ConfigError(
            f"backend=fused on CUDA runs recurrent layers up to {MAX_RECURRENT} neurons wide, got {feats}; "
            "lower model.net.hidden_dim or use backend=sinabs"
        )
    block = triton.next_power_of_2(feats)
    return (rows, 1), block, max(1, min(16, 8192 // block))


def _real(t: torch.Tensor) -> torch.Tensor:
    """A placeholder pointer for an unused (empty) array: the kernel never touches it."""
    return t if t.numel() else torch.zeros(1, device=t.device)


def neuron_forward(x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, b0: torch.Tensor, am: torch.Tensor,
                   om_am: torch.Tensor, asyn: torch.Tensor, aa: torch.Tensor, om_aa: torch.Tensor, wt: torch.Tensor,
                   cfg: Any, spikes: torch.Tensor, vpre: torch.Tensor, bpre: torch.Tensor, tot: torch.Tensor,
                   isyn: torch.Tensor, v_out: torch.Tensor, i_out: torch.Tensor, b_out: torch.Tensor) -> None:
    _check(x, v0, i0, b0, am, asyn, aa)
    rows, steps, feats = x.shape
    grid, block_n, block_m = _ext_launch(rows, feats, cfg.recurrent)
    _neuron_fwd[grid](
        x, v0, i0, b0, am, om_am, asyn, aa, om_aa, _real(wt), spikes, vpre, _real(bpre), _real(tot), _real(isyn),
        v_out, i_out, b_out, steps, feats, cfg.thr, cfg.adapt_scale, cfg.min_v,
        SPIKE_MODE=cfg.spike_mode, RESET_MODE=cfg.reset_mode, HAS_MIN=cfg.has_min, NORM=cfg.norm,
        HAS_SYN=cfg.has_syn, ADAPTIVE=cfg.adaptive, RECURRENT=cfg.recurrent, BLOCK_N=block_n, BLOCK_M=block_m,
    )


def neuron_backward(g_spikes: torch.Tensor, g_vl: torch.Tensor, g_il: torch.Tensor, g_bl: torch.Tensor,
                    cur_in: torch.Tensor, spikes: torch.Tensor, vpre: torch.Tensor, bpre: torch.Tensor,
                    isyn: torch.Tensor, sg: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, b0: torch.Tensor,
                    am: torch.Tensor, om_am: torch.Tensor, asyn: torch.Tensor, aa: torch.Tensor, om_aa: torch.Tensor,
                    w: torch.Tensor, cfg: Any, g_x: torch.Tensor, g_v0: torch.Tensor, g_i0: torch.Tensor,
                    g_b0: torch.Tensor, g_am: torch.Tensor, g_asyn: torch.Tensor, g_aa: torch.Tensor) -> None:
    _check(g_spikes, g_vl, g_il, g_bl, vpre, sg)
    rows, steps, feats = vpre.shape
    grid, block_n, block_m = _ext_launch(rows, feats, cfg.recurrent)
    _neuron_bwd[grid](
        g_spikes, g_vl, g_il, g_bl, cur_in, spikes, vpre, _real(bpre), _real(isyn), sg, v0, i0, am, om_am, asyn, aa,
        om_aa, _real(w), g_x, g_v0, g_i0, g_b0, g_am, g_asyn, g_aa, steps, feats, cfg.thr, cfg.adapt_scale,
        cfg.min_v, RESET_MODE=cfg.reset_mode, HAS_MIN=cfg.has_min, NORM=cfg.norm, HAS_SYN=cfg.has_syn,
        ADAPTIVE=cfg.adaptive, RECURRENT=cfg.recurrent, BLOCK_N=block_n, BLOCK_M=block_m,
    )
