"""The blog's feed-forward SNN: Linear -> spiking -> ... -> Linear, spiking layers from the backend factory."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.snn.factory import NeuronFactory
from brainlab.snn.plug import linear_for


def spiking_mlp(
    width: int, hidden: int, n_hidden: int, num_classes: int, backend: NeuronFactory,
    neuron: Mapping[str, Any], bias: bool = True,
) -> list[nn.Module]:
    """`n_hidden` x (Linear -> spiking layer from `backend`), then a Linear readout to `num_classes`.

    A recurrent neuron (`model.net.neuron.recurrent=true`) is told its width (`features`) for its recurrent
    weight; other neurons get only the `model.net.neuron.*` knobs. The Linear layers are the backend's synapse
    layer (`brainlab.snn.plug.linear_for`: `nn.Linear` or a subclass, e.g. fused's `backend.synapse=event`).
    """
    linear = linear_for(backend)
    layers: list[nn.Module] = []
    width_kw = {"features": hidden} if neuron.get("recurrent") else {}
    for _ in range(n_hidden):
        layers += [linear(width, hidden, bias=bias), backend(**neuron, **width_kw)]
        width = hidden
    layers.append(linear(width, num_classes, bias=bias))
    return layers


class FeedForwardSNN(nn.Module):
    """`(batch, time, *input_shape)` -> `(batch, time, num_classes)` output currents.

    The blog's network is `input_shape=[100], hidden_dim=128, n_hidden=3` with IAF neurons: three
    Linear+IAF blocks and a Linear readout whose output the phase sums over time.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        backend: NeuronFactory,
        hidden_dim: int = 128,
        n_hidden: int = 3,
        neuron: Mapping[str, Any] | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(positive_int("data.input_shape[]", int(d)) for d in input_shape)
        positive_int("model.net.hidden_dim", hidden_dim)
        positive_int("model.net.n_hidden", n_hidden)
        positive_int("model.net.num_classes", num_classes)
        if not callable(backend):
            raise ConfigError("model.net.backend must be a neuron factory (set by the `backend` group)")
        neuron = dict(neuron or {})
        width = math.prod(self.input_shape)
        self.layers = nn.Sequential(*spiking_mlp(width, hidden_dim, n_hidden, num_classes, backend, neuron, bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(
                f"FeedForwardSNN expects (batch, time, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return self.layers(x.flatten(start_dim=2))
