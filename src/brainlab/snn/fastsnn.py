"""`backend=fastsnn`: the single-spike layer of Taylor, King & Harper, "Accelerating spiking neural network
training" (2022) — see REFERENCE.md, "The FastSNN paper".

Each neuron spikes at most once, so there is no reset loop: the membrane for all steps is a causal filter
of the input current (`V_t = sum_{k<=t} beta^(t-k) I_k`, a cumulative sum for IAF, a lower-triangular
T x T matrix product for LIF), threshold crossings `z = H(V - thr)` carry a fast-sigmoid surrogate gradient,
and only the first crossing is kept (`z * [no crossing before t]`, the count taken with a cumulative sum).
It is a different neuron from sinabs's, tested against a step-by-step reference of these equations.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from brainlab.errors import ConfigError
from brainlab.snn.factory import check_choice, register_spiking_type

KNOWN = ("kind", "spike_threshold", "tau_mem", "dt", "surrogate_scale")


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


def causal_filter(current: torch.Tensor, beta: float, v0: torch.Tensor) -> torch.Tensor:
    """`V_t = beta^(t+1) v0 + sum_{k<=t} beta^(t-k) I_k` for `current` `(batch, time, features)`."""
    steps = current.shape[1]
    if beta == 1.0:
        return torch.cumsum(current, dim=1) + v0.unsqueeze(1)
    t = torch.arange(steps, device=current.device, dtype=current.dtype)
    lag = t[:, None] - t[None, :]
    kernel = torch.where(lag >= 0, beta ** lag.clamp(min=0), torch.zeros((), dtype=current.dtype))
    carry = (beta ** (t + 1))[None, :, None] * v0.unsqueeze(1)
    return torch.matmul(kernel, current) + carry


@register_spiking_type
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

    def extra_repr(self) -> str:
        return f"kind={self.kind}, beta={self.beta:.4f}, threshold={self.spike_threshold}"

    def reset_states(self) -> None:
        self.v_mem = torch.zeros_like(self.v_mem.detach())
        self.spiked = torch.zeros_like(self.spiked)

    def _prepare_state(self, batch: int, feats: int, device: torch.device) -> None:
        if self.v_mem.dim() != 2 or self.v_mem.shape != (batch, feats) or self.v_mem.device != device:
            self.v_mem = torch.zeros(batch, feats, device=device)
            self.spiked = torch.zeros(batch, feats, dtype=torch.bool, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"FastSNNNeuron expects (batch, time, *features), got {tuple(x.shape)}")
        batch, steps, *trailing = x.shape
        feats = int(torch.Size(trailing).numel())
        self._prepare_state(batch, feats, x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            current = x.reshape(batch, steps, feats)
            current = current if current.dtype == torch.float64 else current.float()
            v = causal_filter(current, self.beta, self.v_mem.to(current.dtype))
            z = FastSigmoidStep.apply(v - self.spike_threshold, self.surrogate_scale)
            crossings = z.detach()
            earlier = torch.cumsum(crossings, dim=1) - crossings + self.spiked.unsqueeze(1).to(z.dtype)
            spikes = z * (earlier == 0).to(z.dtype)
        self.v_mem = v[:, -1].float()
        self.spiked = self.spiked | (crossings.sum(dim=1) > 0)
        return spikes.reshape(x.shape).to(x.dtype)


def neuron(kind: str = "lif", **params: Any) -> nn.Module:
    """`backend=fastsnn` factory: knobs kind (iaf|lif), spike_threshold, tau_mem, dt, surrogate_scale."""
    unknown = sorted(set(params) - set(KNOWN))
    if unknown:
        raise ConfigError(
            f"model.net.neuron has unknown keys {unknown} for backend=fastsnn (single-spike neuron: no reset "
            f"or spike_fn); known: {', '.join(KNOWN)}"
        )
    check_choice("model.net.neuron.kind", kind, ("iaf", "lif"))
    for key in ("spike_threshold", "tau_mem", "dt", "surrogate_scale"):
        value = params.get(key)
        if value is not None and float(value) <= 0:
            raise ConfigError(f"model.net.neuron.{key} must be > 0, got {value}")
    return FastSNNNeuron(kind=kind, **{k: v for k, v in params.items() if v is not None})
