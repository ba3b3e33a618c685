"""`backend=fastsnn`: the single-spike layer of Taylor, King & Harper, "Accelerating spiking neural network
training" (2022) — see REFERENCE.md, "The FastSNN paper".

Each neuron spikes at most once, so there is no reset loop: the membrane for all steps is a causal filter
of the input current (`V_t = sum_{k<=t} beta^(t-k) I_k`: a cumulative sum for IAF, one lower-triangular
T x T matrix product for LIF), threshold crossings `z = H(V - thr)` carry a fast-sigmoid surrogate gradient,
and only the first crossing is kept. Forward and backward are one autograd function: the first crossing is
found in one pass (`max` over time of the crossing mask gives "fired" and "first step" together), the
backward applies the surrogate up to and including that step and runs the transposed filter once.
It is a different neuron from sinabs's, tested against a step-by-step reference of these equations.

The paper's non-spiking leaky readout and the net with it (`ReadoutSNN`) are in `brainlab.nets.readout_snn`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import sinabs.activation as sa
import sinabs.layers as sl
import torch
from torch import nn

from brainlab.core.checks import check_choice
from brainlab.core.cli_args import closest
from brainlab.core.errors import ConfigError
from brainlab.snn.filters import causal_filter, causal_filter_transposed, decay_powers
from brainlab.snn.parallel import rows_in_parallel
from brainlab.snn.plug import KINDS as PLUG_KINDS
from brainlab.snn.plug import Backend, Support, supporting

KNOWN = ("kind", "spike_threshold", "tau_mem", "dt", "surrogate_scale")
KINDS = ("iaf", "lif")


class FastSigmoidStep(torch.autograd.Function):
    """`H(x)` (1 where x >= 0) forward; fast-sigmoid derivative `1 / (scale |x| + 1)^2` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.scale = scale
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        return grad / (ctx.scale * x.abs() + 1.0) ** 2, None


@nb.njit(cache=True, nogil=True)
def _first_crossing_rows(v, thr, spiked, spikes, first, lo, hi):  # noqa: ANN001, ANN202
    """CPU kernel: per neuron the first step with `v >= thr` (-1 if none), spikes there unless `spiked`."""
    steps, feats = v.shape[1], v.shape[2]
    for b in range(lo, hi):
        for f in range(feats):
            first[b, f] = -1
        for t in range(steps):
            for f in range(feats):
                hit = first[b, f] < 0 and v[b, t, f] >= thr
                if hit:
                    first[b, f] = t
                spikes[b, t, f] = 1.0 if hit and not spiked[b, f] else 0.0


@nb.njit(cache=True, nogil=True)
def _surrogate_rows(v, grad, last, thr, scale, out, lo, hi):  # noqa: ANN001, ANN202
    """CPU kernel: `grad / (scale |v - thr| + 1)^2` for steps `t <= last`, else 0."""
    steps, feats = v.shape[1], v.shape[2]
    for b in range(lo, hi):
        for t in range(steps):
            for f in range(feats):
                if t <= last[b, f]:
                    d = scale * abs(v[b, t, f] - thr) + 1.0
                    out[b, t, f] = grad[b, t, f] / (d * d)
                else:
                    out[b, t, f] = 0.0


def first_crossing(v: torch.Tensor, thr: float, spiked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(spikes, first)`: a one-hot spike at each neuron's first crossing, and that step (-1: none)."""
    if v.device.type == "cpu":
        spikes = torch.empty_like(v)
        first = torch.empty(v.shape[0], v.shape[2], dtype=torch.int64)
        args = (v.numpy(), v.new_tensor(thr).item(), spiked.numpy(), spikes.numpy(), first.numpy())
        rows_in_parallel(v.shape[0], lambda lo, hi: _first_crossing_rows(*args, lo, hi))
        return spikes, first
    return first_crossing_torch(v, thr, spiked)


def first_crossing_torch(v: torch.Tensor, thr: float, spiked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`first_crossing` in torch ops (the CUDA path)."""
    fired, first = torch.max(v >= thr, dim=1)  # the first maximal index = the first crossing
    spikes = torch.zeros_like(v).scatter_(1, first.unsqueeze(1), (fired & ~spiked).unsqueeze(1).to(v.dtype))
    return spikes, first.masked_fill_(~fired, -1)


def surrogate_grad(v: torch.Tensor, grad: torch.Tensor, last: torch.Tensor, thr: float, scale: float) -> torch.Tensor:
    """The fast-sigmoid surrogate `grad / (scale |v - thr| + 1)^2`, zero after step `last` of each neuron."""
    if v.device.type == "cpu":
        grad = grad.contiguous()
        out = torch.empty_like(v)
        args = (v.numpy(), grad.numpy(), last.numpy(), float(thr), float(scale), out.numpy())
        rows_in_parallel(v.shape[0], lambda lo, hi: _surrogate_rows(*args, lo, hi))
        return out
    return surrogate_grad_torch(v, grad, last, thr, scale)


def surrogate_grad_torch(v: torch.Tensor, grad: torch.Tensor, last: torch.Tensor, thr: float, scale: float,
                         ) -> torch.Tensor:
    """`surrogate_grad` in torch ops (the CUDA path)."""
    open_ = torch.arange(v.shape[1], device=v.device)[None, :, None] <= last[:, None, :]
    surrogate = (v - thr).abs_().mul_(scale).add_(1.0).square_()
    return grad.masked_fill(~open_, 0.0).div_(surrogate)


class SingleSpikeFunction(torch.autograd.Function):
    """Membrane filter + first threshold crossing, with the paper's surrogate gradient, as one function.

    Returns `(spikes, v_last, fired)`; `spiked` (neurons that fired in an earlier call) stay silent.
    `v0=None` means a fresh membrane (no carry term).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, current: torch.Tensor, v0: torch.Tensor | None, spiked: torch.Tensor, beta: float, thr: float,
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps = current.shape[1]
        v = causal_filter(current.contiguous(), beta, v0)
        spikes, first = first_crossing(v, thr, spiked)
        fired = first >= 0
        # the surrogate gradient flows through the steps up to the first crossing (all steps if none)
        last = torch.where(fired, first, torch.full_like(first, steps - 1)).masked_fill_(spiked, -1)
        ctx.save_for_backward(v, last)
        ctx.beta, ctx.thr, ctx.scale, ctx.has_v0 = beta, thr, scale, v0 is not None
        ctx.mark_non_differentiable(fired)
        return spikes, v[:, -1], fired

    @staticmethod
    def backward(ctx: Any, grad_spikes: torch.Tensor, grad_vlast: torch.Tensor, _grad_fired: Any) -> Any:
        v, last = ctx.saved_tensors
        steps = v.shape[1]
        grad_v = surrogate_grad(v, grad_spikes, last, ctx.thr, ctx.scale)
        if grad_vlast is not None:
            grad_v[:, -1] += grad_vlast
        grad_current = causal_filter_transposed(grad_v, ctx.beta) if ctx.needs_input_grad[0] else None
        grad_v0 = None
        if ctx.has_v0 and ctx.needs_input_grad[1]:
            grad_v0 = (grad_v * decay_powers(steps, ctx.beta, grad_v)).sum(dim=1)
        return grad_current, grad_v0, None, None, None, None


class FastSNNNeuron(nn.Module):
    """Single-spike IAF / LIF layer `(batch, time, *features) -> spikes` (at most one spike per neuron).

    State (membrane without reset, and whether the neuron has spiked) carries over between calls until
    `reset_states()`, so a sequence split in chunks gives the same spikes as one call.
    """

    def __init__(
        self, kind: str = "lif", spike_threshold: float = 1.0, tau_mem: float = 10.0, dt: float = 1.0,
        surrogate_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.spike_threshold = float(spike_threshold)
        self.beta = 1.0 if kind == "iaf" else math.exp(-float(dt) / float(tau_mem))
        self.surrogate_scale = float(surrogate_scale)
        self.register_buffer("v_mem", torch.zeros(0))
        self.register_buffer("spiked", torch.zeros(0, dtype=torch.bool))
        self.fresh = True  # no call since the last reset: the membrane is zero, nobody has spiked

    def extra_repr(self) -> str:
        return f"kind={self.kind}, beta={self.beta:.4f}, threshold={self.spike_threshold}"

    def reset_states(self) -> None:
        self.v_mem = torch.zeros_like(self.v_mem.detach())
        self.spiked = torch.zeros_like(self.spiked)
        self.fresh = True

    def _prepare_state(self, batch: int, feats: int, device: torch.device) -> None:
        if self.v_mem.dim() != 2 or self.v_mem.shape != (batch, feats) or self.v_mem.device != device:
            self.v_mem = torch.zeros(batch, feats, device=device)
            self.spiked = torch.zeros(batch, feats, dtype=torch.bool, device=device)
            self.fresh = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"FastSNNNeuron expects (batch, time, *features), got {tuple(x.shape)}")
        batch, steps, *trailing = x.shape
        feats = int(torch.Size(trailing).numel())
        self._prepare_state(batch, feats, x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            current = x.reshape(batch, steps, feats)
            current = current if current.dtype == torch.float64 else current.float()
            v0 = None if self.fresh else self.v_mem.to(current.dtype)
            spikes, v_last, fired = SingleSpikeFunction.apply(
                current, v0, self.spiked, self.beta, self.spike_threshold, self.surrogate_scale
            )
        self.v_mem = v_last.float()
        self.spiked = self.spiked | fired
        self.fresh = False
        return spikes.reshape(x.shape).to(x.dtype)


#: what a single-spike neuron lacks, for each shared `model.net.neuron.*` knob it does not take
LACKS = {
    "reset": "it spikes once and never resets", "spike_fn": "it spikes once by definition",
    "recurrent": "no recurrent weight", "features": "no recurrent weight", "tau_syn": "no synaptic current",
    "tau_adapt": "no adaptive threshold", "adapt_scale": "no adaptive threshold",
    "surrogate": "its surrogate is the fast sigmoid (surrogate_scale)",
    "surrogate_args": "its surrogate is the fast sigmoid (surrogate_scale)", "min_v_mem": "no membrane floor",
    "train_tau": "fixed time constants",
}


def takes(support: Support, key: str, value: Any, kind: str) -> bool:
    """Whether a backend's `support` expresses `model.net.neuron.<key>=<value>` (with `kind`)."""
    if key == "reset":
        return str(value) in support.resets
    if key in ("recurrent", "features"):
        return support.recurrent or value is False
    if key == "tau_syn":
        return (kind if kind in support.kinds else "lif") in support.tau_syn_kinds
    if key in ("tau_adapt", "adapt_scale"):
        return "alif" in support.kinds
    return True


def refuse_unknown(kind: str, params: dict[str, Any], unknown: list[str]) -> ConfigError:
    """One line for knobs fastsnn does not take: what it lacks and the backends that take them; a typo gets the
    closest fastsnn knob."""
    shared = [k for k in unknown if k in LACKS and not (k == "features" and "recurrent" in unknown)]
    if not shared:
        return ConfigError(f"model.net.neuron has unknown keys {unknown} for backend=fastsnn"
                           f"{closest(unknown[0], KNOWN)}; known: {', '.join(KNOWN)}")
    lacks = "; ".join(dict.fromkeys(LACKS[k] for k in shared))
    able = supporting(lambda s: all(takes(s, k, params[k], kind) for k in shared))
    it = "it" if len(shared) == 1 else "them"
    return ConfigError(
        f"model.net.neuron has unknown keys {shared} for backend=fastsnn (a single-spike neuron: {lacks}): "
        f"{able} take {it}; with fastsnn remove {it} (known: {', '.join(KNOWN)})")


def neuron(kind: str = "lif", **params: Any) -> nn.Module:
    """`backend=fastsnn` factory: knobs kind (iaf|lif), spike_threshold, tau_mem, dt, surrogate_scale."""
    unknown = sorted(set(params) - set(KNOWN))
    if unknown:
        raise refuse_unknown(kind, params, unknown)
    if kind not in KINDS:
        if kind in PLUG_KINDS:
            raise ConfigError(
                f"model.net.neuron.kind={kind} is not a fastsnn neuron (its kinds: {', '.join(KINDS)}; a "
                f"single-spike neuron has no adaptive threshold): {supporting(lambda s: kind in s.kinds)} can do "
                f"kind={kind}")
        check_choice("model.net.neuron.kind", kind, KINDS)
    for key in ("spike_threshold", "tau_mem", "dt", "surrogate_scale"):
        value = params.get(key)
        if value is not None and float(value) <= 0:
            raise ConfigError(f"model.net.neuron.{key} must be > 0, got {value}")
    return FastSNNNeuron(kind=kind, **{k: v for k, v in params.items() if v is not None})


#: the membrane value a single-spike neuron is held at after its first spike (see `SilenceAfterSpike`)
SILENT = -math.inf


@dataclass
class SilenceAfterSpike:
    """sinabs reset for single-spike neurons: a neuron that spiked is set to `reset_value` (-inf) for good.

    With `V_t = alpha V_(t-1) + I_t` and `alpha` in (0, 1], `-inf` stays `-inf` for every finite input and
    never reaches a threshold (`-inf - thr >= 0` is false), so the layer gives exactly the fastsnn neuron's
    spikes (first crossing only, no reset before it) for all finite inputs. Where `alpha` is 0 (tau below
    about 0.0115 steps in float32) the silenced membrane reads NaN (`0 * -inf`) instead of -inf; NaN never
    crosses a threshold either, so the spikes are still the same. A layer using it must have `min_v_mem=None`
    (a floor would lift the neuron back). Not for training: gradients through an infinite membrane are not
    finite. (sinabs 3.1's own `MembraneReset` adds its `reset_value` to every neuron at every step, so it is
    only right for a value of zero.)
    """

    reset_value: float = SILENT

    def __call__(self, spikes: torch.Tensor, state: dict, spike_threshold: Any) -> dict:
        new_state = state.copy()
        v_mem = state["v_mem"]
        new_state["v_mem"] = torch.where(spikes > 0, torch.full_like(v_mem, self.reset_value), v_mem)
        return new_state


def steps_tau(beta: float) -> torch.Tensor:
    """The time constant in steps whose sinabs decay `exp(-1 / tau)` is `beta` (1e-3 when `beta` underflowed
    to 0: the decay is 0 in float64 too)."""
    return torch.tensor(-1.0 / math.log(beta) if beta > 0 else 1e-3)


def to_sinabs(layer: FastSNNNeuron) -> sl.LIF:
    """NIR mapping: sinabs IAF (beta = 1) / LIF with the same `V_t = beta V_(t-1) + I_t` (no input scaling,
    `tau_mem = dt / -log(beta)` in steps), same threshold test `V >= thr`, one spike, then `SilenceAfterSpike`."""
    common = dict(
        spike_threshold=torch.tensor(layer.spike_threshold),
        spike_fn=sa.SingleSpike,
        reset_fn=SilenceAfterSpike(),
        min_v_mem=None,
    )
    if layer.beta == 1.0:
        return sl.IAF(**common)
    return sl.LIF(tau_mem=steps_tau(layer.beta), norm_input=False, **common)


BACKEND = Backend("fastsnn", support=None, layers=(FastSNNNeuron,), to_sinabs=to_sinabs,
                  bench_neuron={"kind": "lif", "tau_mem": 10.0})
