"""`backend=fused`: sinabs's IAF/LIF neurons as one custom autograd function per layer (the EXODUS idea).

The forward runs the whole state loop in a compiled kernel without building an autograd graph per time step;
the backward is a single reverse-time pass. Spikes are bit-identical to sinabs for the same parameters and
inputs (float32 state); gradients equal sinabs's surrogate gradients up to float rounding. Recurrent layers add
`rec_connect(spikes)` each step: sinabs computes it with nn.Linear (BLAS, whose summation order is its own), the
fused kernels sum in neuron order, so the recurrent current may differ in its last bit; that flips a spike only
where the membrane has run away to ~1e5 (an unstable recurrent loop). CPU kernels are numba (`cpu.py`,
`ext_cpu.py`: compiled once and cached on disk), the CUDA kernels Triton (`triton.py`, imported only when
used); `ext.py` runs ALIF and recurrent layers. `backend.kernel=auto|numba|triton` picks the path (`select.py`;
auto: Triton for CUDA tensors, numba on CPU). Under autocast the state stays float32 and spikes come back in the
input dtype; `torch.compile` treats the layer as a graph break (optional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sinabs.activation as sa
import torch
from torch import nn

from brainlab.core.checks import check_choice
from brainlab.snn import sinabs_backend
from brainlab.snn.event_linear import MODES, event_linear
from brainlab.snn.fused import cpu as K
from brainlab.snn.fused import ext as fused_ext
from brainlab.snn.fused.select import check_kernel, triton_kernels, use_triton
from brainlab.snn.grads import same_at_every_step
from brainlab.snn.parallel import rows_in_parallel
from brainlab.snn.plug import Backend, no_nir
from brainlab.snn.reuse import Workspace
from brainlab.snn.sinabs_backend import make_surrogate, recurrent_weight
from brainlab.snn.spec import NeuronSpec, parse_neuron


@dataclass(frozen=True)
class KernelConfig:
    """Everything the kernels need besides tensors; `surrogate` is sinabs's own surrogate object."""

    thr: float
    spike_mode: int
    reset_mode: int
    has_min: bool
    min_v: float
    surrogate: Any
    kernel: str = "auto"


def surrogate_into(cfg: KernelConfig, vpre: torch.Tensor) -> torch.Tensor:
    """sinabs's surrogate derivative at `vpre` as a new tensor (SingleExponential in place, fewer passes)."""
    fn = cfg.surrogate
    if isinstance(fn, sa.SingleExponential):
        width = cfg.thr * fn.grad_width
        out = torch.sub(vpre, cfg.thr).abs_().mul_(-1.0 / width).exp_()
        return out.mul_(fn.grad_scale / width)
    return fn(vpre, cfg.thr).to(vpre.dtype).contiguous()


def kernel_config(spec: NeuronSpec, kernel: str = "auto") -> KernelConfig:
    return KernelConfig(
        thr=float(spec.spike_threshold),
        spike_mode=K.SPIKE_MULTI if spec.spike_fn == "multi" else K.SPIKE_SINGLE,
        reset_mode=K.RESET_SUBTRACT if spec.reset == "subtract" else K.RESET_ZERO,
        has_min=spec.min_v_mem is not None,
        min_v=float(spec.min_v_mem) if spec.min_v_mem is not None else 0.0,
        surrogate=make_surrogate(spec),
        kernel=kernel,
    )


def ext_config(spec: NeuronSpec, kernel: str = "auto") -> fused_ext.ExtConfig:
    """Flags of the ALIF / recurrent kernel (the synaptic current and norm_input run inside its loop)."""
    base = kernel_config(spec, kernel)
    return fused_ext.ExtConfig(
        thr=base.thr, adapt_scale=float(spec.adapt_scale), spike_mode=base.spike_mode, reset_mode=base.reset_mode,
        has_min=base.has_min, min_v=base.min_v, norm=spec.leaky, has_syn=spec.tau_syn is not None,
        adaptive=spec.adaptive, recurrent=spec.recurrent, surrogate=base.surrogate, kernel=kernel,
    )


def _np(t: torch.Tensor) -> Any:
    return t.detach().numpy()


def _f32(x: float) -> np.float32:
    return np.float32(x)


def exp_params(cfg: KernelConfig) -> tuple[np.float32, np.float32]:
    """sinabs's SingleExponential surrogate as `exp_scale * exp(exp_rate * |v - thr|)` (CPU kernels)."""
    width = cfg.thr * getattr(cfg.surrogate, "grad_width", 1.0)
    return _f32(getattr(cfg.surrogate, "grad_scale", 1.0) / width), _f32(-1.0 / width)


class MembraneFn(torch.autograd.Function):
    """`(u, v0, alpha) -> (spikes, v_last)`: the membrane loop with reset, threshold and lower bound.

    `in_scale` (CPU kernels only, a constant: no gradient): the input current is `in_scale * u`, LIF's
    norm_input folded into the kernels (one pass over the input less each way; the same float32 product)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, v0: torch.Tensor, alpha: torch.Tensor, cfg: KernelConfig,
                in_scale: float = 1.0, slots: Workspace | None = None) -> Any:
        u, v0, alpha = u.contiguous(), v0.contiguous(), alpha.contiguous()
        slots = slots or Workspace()
        spikes, vpre, v_last = slots["spikes"].take(u), slots["vpre"].take(u), torch.empty_like(v0)
        if use_triton(u, cfg.kernel):
            assert in_scale == 1.0, "the Triton kernels take the scaled input"
            triton_kernels().membrane_forward(u, v0, alpha, cfg, spikes, vpre, v_last)
        else:
            a, (u_, v0_, s_, p_, last_) = _np(alpha), map(_np, (u, v0, spikes, vpre, v_last))
            thr, min_v = _f32(cfg.thr), _f32(cfg.min_v)
            rows_in_parallel(len(u_), lambda lo, hi: K.membrane_forward(
                u_[lo:hi], v0_[lo:hi], a, thr, cfg.spike_mode, cfg.reset_mode, cfg.has_min, min_v, _f32(in_scale),
                s_[lo:hi], p_[lo:hi], last_[lo:hi],
            ))
        ctx.save_for_backward(vpre, v0, alpha)
        ctx.cfg, ctx.in_scale, ctx.slots = cfg, in_scale, slots
        return spikes, v_last

    @staticmethod
    def backward(ctx: Any, g_spikes: torch.Tensor, g_last: torch.Tensor) -> Any:
        vpre, v0, alpha = ctx.saved_tensors
        cfg: KernelConfig = ctx.cfg
        g_last = g_last.to(vpre.dtype).contiguous()
        need_alpha = bool(ctx.needs_input_grad[2])
        assert ctx.in_scale == 1.0 or not need_alpha, "the decay's gradient needs the unscaled input gradient"
        triton = use_triton(vpre, cfg.kernel)
        every_step = triton or not same_at_every_step(g_spikes)
        g_spikes = (g_spikes if every_step else g_spikes[:, :1]).to(vpre.dtype).contiguous()
        inline = not triton and isinstance(cfg.surrogate, sa.SingleExponential)
        # the surrogate at every step, overwritten by the kernel with the input gradient (CPU: computed inline)
        g_u = ctx.slots["g_u"].take(vpre) if inline else surrogate_into(cfg, vpre)
        g_v0, g_alpha = torch.empty_like(v0), torch.empty_like(v0)
        if triton:
            triton_kernels().membrane_backward(g_spikes, g_last, vpre, g_u, v0, alpha, cfg, need_alpha, g_u, g_v0,
                                               g_alpha)
        else:
            a, thr, min_v = _np(alpha), _f32(cfg.thr), _f32(cfg.min_v)
            exp_scale, exp_rate = exp_params(cfg)
            gs_, gl_, p_, v0_, gu_, gv0_, ga_ = map(_np, (g_spikes, g_last, vpre, v0, g_u, g_v0, g_alpha))
            rows_in_parallel(len(p_), lambda lo, hi: K.membrane_backward(
                gs_[lo:hi], every_step, gl_[lo:hi], p_[lo:hi], gu_[lo:hi], v0_[lo:hi], a, thr, cfg.spike_mode,
                cfg.reset_mode, cfg.has_min, min_v, inline, exp_scale, exp_rate, need_alpha, _f32(ctx.in_scale),
                gu_[lo:hi], gv0_[lo:hi], ga_[lo:hi],
            ))
        return g_u, g_v0, g_alpha.sum(0) if need_alpha else None, None, None, None


class SynapseFn(torch.autograd.Function):
    """`(x, i0, alpha) -> i`: sinabs's synaptic current `i_t = alpha * (i_{t-1} + x_t)` (`kernel`: the path)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, i0: torch.Tensor, alpha: torch.Tensor, kernel: str = "auto",
                slots: Workspace | None = None) -> torch.Tensor:
        x, i0, alpha = x.contiguous(), i0.contiguous(), alpha.contiguous()
        slots = slots or Workspace()
        out = slots["synapse"].take(x)
        if use_triton(x, kernel):
            triton_kernels().synapse_forward(x, i0, alpha, out)
        else:
            x_, i0_, a, out_ = map(_np, (x, i0, alpha, out))
            rows_in_parallel(len(x_), lambda lo, hi: K.synapse_forward(x_[lo:hi], i0_[lo:hi], a, out_[lo:hi]))
        ctx.save_for_backward(x, out, i0, alpha)
        ctx.kernel, ctx.slots = kernel, slots
        return out

    @staticmethod
    def backward(ctx: Any, g_out: torch.Tensor) -> Any:
        x, out, i0, alpha = ctx.saved_tensors
        g_out = g_out.to(x.dtype).contiguous()
        g_x, g_i0, g_alpha = ctx.slots["synapse_g_x"].take(x), torch.empty_like(i0), torch.empty_like(i0)
        if use_triton(x, ctx.kernel):
            triton_kernels().synapse_backward(g_out, x, out, i0, alpha, g_x, g_i0, g_alpha)
        else:
            g_, x_, o_, i0_, a, gx_, gi_, ga_ = map(_np, (g_out, x, out, i0, alpha, g_x, g_i0, g_alpha))
            rows_in_parallel(len(x_), lambda lo, hi: K.synapse_backward(
                g_[lo:hi], x_[lo:hi], o_[lo:hi], i0_[lo:hi], a, gx_[lo:hi], gi_[lo:hi], ga_[lo:hi]
            ))
        return g_x, g_i0, g_alpha.sum(0), None, None


@torch.compiler.disable
def _membrane(u: torch.Tensor, v0: torch.Tensor, alpha: torch.Tensor, cfg: KernelConfig, in_scale: float = 1.0,
              slots: Workspace | None = None) -> Any:
    """The kernels stay outside torch.compile graphs (a graph break), so compiled nets still run them."""
    return MembraneFn.apply(u, v0, alpha, cfg, in_scale, slots)


@torch.compiler.disable
def _synapse(x: torch.Tensor, i0: torch.Tensor, alpha: torch.Tensor, kernel: str,
             slots: Workspace | None = None) -> torch.Tensor:
    return SynapseFn.apply(x, i0, alpha, kernel, slots)


class FusedNeuron(nn.Module):
    """IAF / LIF / ALIF layer `(batch, time, *features) -> spikes` with sinabs's semantics.

    Like sinabs: time constants are parameters (learnable with `train_tau=true`; LIF/ALIF input scaled by
    `1 - alpha`), state is kept between calls until `reset_states()`. Plain IAF/LIF re-initialise the state
    when the feature shape changes and resample old rows when only the batch size changes; ALIF and recurrent
    layers re-initialise on any shape change (as sinabs's ALIF / *Recurrent layers do). Recurrent layers hold
    `rec_connect` (bias-free Linear, as sinabs). State is float32 (also under autocast); the spikes come back
    in the input's dtype. `kernel` (`backend.kernel`): auto (Triton on CUDA, numba on CPU), numba or triton.
    """

    def __init__(self, spec: NeuronSpec, kernel: str = "auto") -> None:
        super().__init__()
        self.spec = spec
        self.kernel = check_kernel(kernel)
        self.cfg = kernel_config(spec, kernel)
        self.ext = spec.adaptive or spec.recurrent
        self.ext_cfg = ext_config(spec, kernel) if self.ext else None

        def tau(value: float | None) -> nn.Parameter | None:
            if value is None:
                return None
            return nn.Parameter(torch.tensor(float(value)), requires_grad=spec.train_tau)

        self.tau_mem = tau(spec.tau_mem) if spec.leaky else None
        self.tau_syn = tau(spec.tau_syn)
        self.tau_adapt = tau(spec.tau_adapt) if spec.adaptive else None
        self.rec_connect = recurrent_weight(int(spec.features)) if spec.recurrent else None
        self._slots = Workspace()  # the kernels' large outputs, their memory reused between steps
        self.register_buffer("v_mem", torch.zeros(0))
        self.register_buffer("i_syn", torch.zeros(0))
        self.register_buffer("b", torch.zeros(0))

    def extra_repr(self) -> str:
        s = self.spec
        extra = ", recurrent" if s.recurrent else ""
        extra += f", kernel={self.kernel}" if self.kernel != "auto" else ""
        return f"kind={s.kind}, spike_fn={s.spike_fn}, reset={s.reset}, threshold={s.spike_threshold}{extra}"

    def reset_states(self) -> None:
        """Zero the state (kept allocated, detached from any graph)."""
        for name in ("v_mem", "i_syn", "b"):
            buf = getattr(self, name)
            setattr(self, name, torch.zeros_like(buf.detach()))

    def _prepare_state(self, batch: int, feats: int, device: torch.device) -> None:
        shape = (batch, feats)
        fresh = self.v_mem.dim() != 2 or self.v_mem.shape[1] != feats or self.v_mem.device != device
        if fresh or (self.ext and self.v_mem.shape[0] != batch):
            self.v_mem = torch.zeros(shape, device=device)
            self.i_syn = torch.zeros(shape, device=device)
            self.b = torch.zeros(shape, device=device)
        elif self.v_mem.shape[0] != batch:  # sinabs: resample old rows for a new batch size
            idx = torch.randint(0, self.v_mem.shape[0], (batch,), device=device)
            self.v_mem = self.v_mem.index_select(0, idx)
            self.i_syn = self.i_syn.index_select(0, idx)
            self.b = self.b.index_select(0, idx)

    def _decay(self, tau: torch.Tensor | None, feats: int, device: torch.device, default: float = 1.0) -> torch.Tensor:
        if tau is None:
            return torch.full((feats,), default, device=device)
        return torch.exp(-1.0 / tau).float().expand(feats)

    def _forward_ext(self, u: torch.Tensor, feats: int) -> torch.Tensor:
        dev = u.device
        am = self._decay(self.tau_mem, feats, dev)
        asyn = self._decay(self.tau_syn, feats, dev)
        aa = self._decay(self.tau_adapt, feats, dev, default=0.0)
        w = self.rec_connect.weight.float() if self.rec_connect is not None else torch.empty(0, 0, device=dev)
        spikes, self.v_mem, i_last, b_last = fused_ext.run(u, self.v_mem, self.i_syn, self.b, am, asyn, aa, w,
                                                           self.ext_cfg, self._slots)
        if self.ext_cfg.has_syn:
            self.i_syn = i_last
        if self.ext_cfg.adaptive:
            self.b = b_last
        return spikes

    @property
    def spike_threshold(self) -> torch.Tensor | float:
        """The current threshold (ALIF: `b0 + adapt_scale * b`, as sinabs's state `spike_threshold`)."""
        return self.ext_cfg.threshold(self.b) if self.spec.adaptive else self.spec.spike_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"{type(self).__name__} expects (batch, time, *features), got {tuple(x.shape)}")
        batch, steps, *trailing = x.shape
        feats = int(torch.Size(trailing).numel())
        if self.rec_connect is not None and feats != self.rec_connect.in_features:
            raise ValueError(f"recurrent layer of width {self.rec_connect.in_features} got {feats} features")
        self._prepare_state(batch, feats, x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = x.reshape(batch, steps, feats).float()
            if self.ext:
                return self._forward_ext(u, feats).reshape(x.shape).to(x.dtype)
            if self.tau_syn is not None:
                u = _synapse(u, self.i_syn, self._decay(self.tau_syn, feats, x.device), self.kernel, self._slots)
                self.i_syn = u[:, -1]
            alpha = self._decay(self.tau_mem, feats, x.device)
            in_scale = 1.0
            if self.tau_mem is not None:  # LIF: sinabs's norm_input
                norm = 1 - torch.exp(-1.0 / self.tau_mem)
                if norm.requires_grad or use_triton(u, self.kernel):
                    u = norm * u
                else:  # a constant: the CPU kernels multiply it in (same float32 product, no extra pass)
                    in_scale = float(norm)
            spikes, self.v_mem = _membrane(u, self.v_mem, alpha, self.cfg, in_scale, self._slots)
        return spikes.reshape(x.shape).to(x.dtype)


def neuron(kind: str = "iaf", kernel: str = "auto", synapse: str = "dense", **params: Any) -> nn.Module:
    """`backend=fused` factory: the same knobs (and neuron kinds) as `backend=sinabs`; `kernel` is the backend's
    own `backend.kernel` (auto: Triton for CUDA tensors, numba on CPU; numba; triton); `synapse`
    (`backend.synapse`: dense | event | auto) is the nets' synapse layer (`linear`, `brainlab.snn.event_linear`)."""
    check_choice("backend.synapse", synapse, MODES)
    return FusedNeuron(parse_neuron("fused", {"kind": kind, **params}), kernel=kernel)


def to_sinabs(layer: FusedNeuron) -> nn.Module:
    """NIR mapping: an IAF/LIF layer as the sinabs layer of its spec with the trained time constants."""
    spec = layer.spec
    if spec.kind not in ("iaf", "lif"):
        raise no_nir(layer)
    out = sinabs_backend.build(spec)
    with torch.no_grad():
        if layer.rec_connect is not None:  # recurrent: sinabs's IAFRecurrent/LIFRecurrent with the trained weight
            out.rec_connect.weight.data = layer.rec_connect.weight.detach().clone()
        if layer.tau_mem is not None:
            out.tau_mem.data = layer.tau_mem.detach().clone()
        if layer.tau_syn is not None:
            out.tau_syn.data = layer.tau_syn.detach().clone()
    return out


BACKEND = Backend("fused", layers=(FusedNeuron,), to_sinabs=to_sinabs, linear=event_linear,
                  linear_options=("synapse",))
