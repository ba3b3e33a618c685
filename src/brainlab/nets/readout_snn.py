"""The feed-forward SNN with the FastSNN paper's non-spiking leaky readout as an option (REFERENCE.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import check_choice
from brainlab.core.errors import ConfigError
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.filters import causal_filter


class LeakyReadout(nn.Module):
    """The paper's non-spiking readout: `V_t = beta V_(t-1) + I_t`, `beta = exp(-dt / tau)`, output `V`.

    Not a spiking layer (firing-rate callbacks skip it); its membrane carries over calls until reset.
    """

    def __init__(self, tau: float = 20.0, dt: float = 1.0) -> None:
        super().__init__()
        if float(tau) <= 0 or float(dt) <= 0:
            raise ConfigError(f"model.net.readout_tau and dt must be > 0, got tau={tau}, dt={dt}")
        self.tau, self.dt = float(tau), float(dt)
        self.beta = math.exp(-self.dt / self.tau)
        self.register_buffer("v_mem", torch.zeros(0))

    def extra_repr(self) -> str:
        return f"tau={self.tau}, dt={self.dt}, beta={self.beta:.4f}"

    def reset_states(self) -> None:
        self.v_mem = torch.zeros(0, device=self.v_mem.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, *trailing = x.shape
        v0 = self.v_mem if self.v_mem.shape == (batch, *trailing) else x.new_zeros(batch, *trailing)
        current = x.reshape(batch, x.shape[1], -1)
        v = causal_filter(current, self.beta, v0.reshape(batch, -1).to(current.dtype)).reshape(x.shape)
        self.v_mem = v[:, -1]
        return v


class ReadoutSNN(FeedForwardSNN):
    """`FeedForwardSNN` with the readout as a knob: `linear` (brainlab's: the Linear output, which the phase
    sums over time) or `leaky` (the FastSNN paper's non-spiking leaky integrator, `readout_tau` 20, on the
    Linear output; the phase then sums the readout membrane over time). `readout_dt` defaults to the
    neuron's `dt`.
    """

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, backend: Any, readout: str = "linear",
        readout_tau: float = 20.0, readout_dt: float | None = None, neuron: Mapping[str, Any] | None = None,
        **net: Any,
    ) -> None:
        super().__init__(input_shape, num_classes, backend, neuron=neuron, **net)
        self.readout = check_choice("model.net.readout", readout, ("linear", "leaky"))
        if readout == "leaky":
            dt = readout_dt if readout_dt is not None else float((neuron or {}).get("dt") or 1.0)
            self.layers.append(LeakyReadout(tau=readout_tau, dt=dt))
