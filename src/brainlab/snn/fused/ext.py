"""The fused backend's richer neurons as one custom autograd function: ALIF, recurrent IAF/LIF/ALIF, and the
synaptic current inside the loop when the layer is recurrent (kernels: `ext_cpu.py`, Triton in `triton.py`).
Used by `FusedNeuron` whenever `kind=alif` or `recurrent=true`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from brainlab.snn.fused import ext_cpu as X
from brainlab.snn.fused.select import triton_kernels, use_triton
from brainlab.snn.parallel import rows_in_parallel
from brainlab.snn.reuse import Workspace

_EMPTY3 = torch.empty(0, 0, 0)
_EMPTY2 = torch.empty(0, 0)


@dataclass(frozen=True)
class ExtConfig:
    """Flags and scalars of one layer; `surrogate` is sinabs's own surrogate object."""

    thr: float
    adapt_scale: float
    spike_mode: int
    reset_mode: int
    has_min: bool
    min_v: float
    norm: bool
    has_syn: bool
    adaptive: bool
    recurrent: bool
    surrogate: Any
    kernel: str = "auto"

    def threshold(self, bpre: torch.Tensor) -> torch.Tensor | float:
        """The threshold at every step, computed as sinabs does (`b0 + adapt_scale * b`)."""
        return self.adapt_scale * bpre + self.thr if self.adaptive else self.thr


def _np(t: torch.Tensor) -> Any:
    return t.detach().numpy()


def _opt(t: torch.Tensor, flag: bool, empty: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(t) if flag else empty.to(t.device)


def _cpu_rows(kernel: Callable[..., None], head: Sequence[torch.Tensor], decays: Sequence[torch.Tensor],
              weight: torch.Tensor, cfg: ExtConfig, tail: Sequence[torch.Tensor], spike_mode: bool) -> None:
    """`kernel(*head, *decays, weight, scalars and flags of cfg, *tail)` on batch slices in threads; the arrays of
    `head` / `tail` are sliced by row, empty (unused) ones passed whole."""
    head_, tail_ = [_np(t) for t in head], [_np(t) for t in tail]
    shared = [*(_np(t) for t in decays), _np(weight), np.float32(cfg.thr), np.float32(cfg.adapt_scale)]
    shared += [cfg.spike_mode] if spike_mode else []
    shared += [cfg.reset_mode, cfg.has_min, np.float32(cfg.min_v), cfg.norm, cfg.has_syn, cfg.adaptive, cfg.recurrent]

    def rows(lo: int, hi: int) -> None:
        def sl(arr: Any) -> Any:
            return arr[lo:hi] if len(arr) else arr

        kernel(*map(sl, head_), *shared, *map(sl, tail_))

    rows_in_parallel(len(head_[0]), rows)


class NeuronFn(torch.autograd.Function):
    """`(x, v0, i0, b0, am, asyn, aa, w) -> (spikes, v_last, i_last, b_last)`; decays are per-feature vectors,
    `w` the `(features, features)` recurrent weight (empty when not recurrent)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, b0: torch.Tensor, am: torch.Tensor,
                asyn: torch.Tensor, aa: torch.Tensor, w: torch.Tensor, cfg: ExtConfig,
                slots: Workspace | None = None) -> Any:
        x, v0, i0, b0 = (t.contiguous() for t in (x, v0, i0, b0))
        am, asyn, aa, w = (t.detach().contiguous() for t in (am, asyn, aa, w))
        om_am, om_aa = 1 - am, 1 - aa
        slots = slots or Workspace()
        spikes, vpre = slots["spikes"].take(x), slots["vpre"].take(x)
        bpre, tot, isyn = _opt(x, cfg.adaptive, _EMPTY3), _opt(x, cfg.recurrent, _EMPTY3), _opt(x, cfg.has_syn, _EMPTY3)
        wt = w.t().contiguous() if cfg.recurrent else _EMPTY2.to(x.device)
        v_out, i_out, b_out = torch.empty_like(v0), torch.empty_like(i0), torch.empty_like(b0)
        if use_triton(x, cfg.kernel):
            triton_kernels().neuron_forward(x, v0, i0, b0, am, om_am, asyn, aa, om_aa, wt, cfg, spikes, vpre, bpre,
                                            tot, isyn, v_out, i_out, b_out)
        else:
            _cpu_rows(X.neuron_forward, (x, v0, i0, b0), (am, om_am, asyn, aa, om_aa), wt, cfg,
                      (spikes, vpre, bpre, tot, isyn, v_out, i_out, b_out), spike_mode=True)
        ctx.save_for_backward(tot if cfg.recurrent else x, spikes, vpre, bpre, isyn, v0, i0, b0, am, asyn, aa, w)
        ctx.cfg, ctx.slots = cfg, slots
        return spikes, v_out, i_out, b_out

    @staticmethod
    def backward(ctx: Any, g_spikes: torch.Tensor, g_v: torch.Tensor, g_i: torch.Tensor, g_b: torch.Tensor) -> Any:
        cur, spikes, vpre, bpre, isyn, v0, i0, b0, am, asyn, aa, w = ctx.saved_tensors
        cfg: ExtConfig = ctx.cfg
        g_spikes, g_v, g_i, g_b = (g.to(vpre.dtype).contiguous() for g in (g_spikes, g_v, g_i, g_b))
        sg = cfg.surrogate(vpre, cfg.threshold(bpre)).to(vpre.dtype).contiguous()
        om_am, om_aa = 1 - am, 1 - aa
        g_x = ctx.slots["g_u"].take(vpre)
        g_v0, g_i0, g_b0 = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        g_am, g_asyn, g_aa = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        if use_triton(vpre, cfg.kernel):
            triton_kernels().neuron_backward(g_spikes, g_v, g_i, g_b, cur, spikes, vpre, bpre, isyn, sg, v0, i0, b0,
                                             am, om_am, asyn, aa, om_aa, w, cfg, g_x, g_v0, g_i0, g_b0, g_am, g_asyn,
                                             g_aa)
        else:
            _cpu_rows(X.neuron_backward, (g_spikes, g_v, g_i, g_b, cur, spikes, vpre, bpre, isyn, sg, v0, i0, b0),
                      (am, om_am, asyn, aa, om_aa), w, cfg, (g_x, g_v0, g_i0, g_b0, g_am, g_asyn, g_aa),
                      spike_mode=False)
        g_w = None
        if cfg.recurrent and ctx.needs_input_grad[7]:
            feats = vpre.shape[-1]
            g_w = g_x[:, 1:].reshape(-1, feats).t() @ spikes[:, :-1].reshape(-1, feats)
        return g_x, g_v0, g_i0, g_b0, g_am.sum(0), g_asyn.sum(0), g_aa.sum(0), g_w, None, None


@torch.compiler.disable
def run(x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, b0: torch.Tensor, am: torch.Tensor, asyn: torch.Tensor,
        aa: torch.Tensor, w: torch.Tensor, cfg: ExtConfig, slots: Workspace | None = None) -> Any:
    """The kernels stay outside torch.compile graphs (a graph break); `slots`: the layer's reused buffers."""
    return NeuronFn.apply(x, v0, i0, b0, am, asyn, aa, w, cfg, slots)
