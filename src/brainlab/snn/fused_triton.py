"""CUDA kernels of the fused backend (Triton; imported only when a fused layer sees a CUDA tensor).

One program per block of neurons loops over time, like the CPU kernels in `fused_cpu.py`. To keep spikes
bit-identical to sinabs (which runs separate torch ops), products use `mul.rn` (never contracted into FMA)
and the spike count uses IEEE division. Tested only where a GPU is present (`pytest -m gpu`).
"""

from __future__ import annotations

from typing import Any

import torch

from brainlab.errors import ConfigError

try:
    import triton
    import triton.language as tl
except ImportError as err:  # pragma: no cover - depends on the install
    raise ConfigError(
        f"backend=fused on CUDA needs Triton ({type(err).__name__}: {err}); install it with `pip install triton` "
        "(it ships with the CUDA builds of torch)"
    ) from err

BLOCK = 128


@triton.jit
def _mul_rn(a, b):
    return tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=tl.float32, is_pure=True,
                                     pack=1)


@triton.jit
def _add_rn(a, b):
    return tl.inline_asm_elementwise("add.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=tl.float32, is_pure=True,
                                     pack=1)


@triton.jit
def _spike(v, thr, SPIKE_MODE: tl.constexpr):
    if SPIKE_MODE == 0:
        s = tl.where(v > 0.0, tl.floor(tl.fdiv(v, thr, ieee_rounding=True)), 0.0)
    else:
        s = tl.where(v - thr >= 0.0, 1.0, 0.0)
    return s


@triton.jit
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


@triton.jit
def _membrane_fwd(u, v0, alpha, spikes, vpre, v_out, n_rows, steps, feats, thr, min_v,
                  SPIKE_MODE: tl.constexpr, RESET_MODE: tl.constexpr, HAS_MIN: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_rows * feats
    b = offs // feats
    n = offs % feats
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
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_rows * feats
    b = offs // feats
    n = offs % feats
    g_post = tl.load(g_vout + offs, mask=mask, other=0.0)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    g_a = tl.zeros([BLOCK], dtype=tl.float32)
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
        tl.store(g_u + idx, gx, mask=mask)
        if NEED_ALPHA:
            if t > 0:
                xp = tl.load(vpre + idx - feats, mask=mask, other=0.0)
                prev, _ = _after_spike(xp, _spike(xp, thr, SPIKE_MODE), thr, min_v, RESET_MODE, HAS_MIN)
            else:
                prev = tl.load(v0 + offs, mask=mask, other=0.0)
            g_a += gx * prev
        g_post = a * gx
    tl.store(g_v0 + offs, g_post, mask=mask)
    tl.store(g_alpha + offs, g_a, mask=mask)


@triton.jit
def _synapse_fwd(x, i0, alpha, out, n_rows, steps, feats, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_rows * feats
    b = offs // feats
    n = offs % feats
    cur = tl.load(i0 + offs, mask=mask, other=0.0)
    a = tl.load(alpha + n, mask=mask, other=1.0)
    for t in range(steps):
        idx = (b * steps + t) * feats + n
        cur = _mul_rn(a, _add_rn(cur, tl.load(x + idx, mask=mask, other=0.0)))
        tl.store(out + idx, cur, mask=mask)


@triton.jit
def _synapse_bwd(g_out, x, out, i0, alpha, g_x, g_i0, g_alpha, n_rows, steps, feats, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_rows * feats
    b = offs // feats
    n = offs % feats
    a = tl.load(alpha + n, mask=mask, other=1.0)
    g_cur = tl.zeros([BLOCK], dtype=tl.float32)
    g_a = tl.zeros([BLOCK], dtype=tl.float32)
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
