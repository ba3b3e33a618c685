"""SNN core: 4 spiking layers from the backend factory (phase 1/2's `spiking_mlp`), run over the token stream
as time: `(B, N, dim)` tokens are `(batch, time, features)` input currents.

Returns the readout (added to the residual stream) and the last layer's spikes (the HTM layer's input bits).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.snn import spiking_mlp
from brainlab.snn.factory import NeuronFactory


def restore_neuron(neuron: nn.Module, reference: Mapping[str, torch.Tensor]) -> None:
    """Set a backend layer's own tensors (sinabs: the threshold parameter, the empty state) to `reference`."""
    with torch.no_grad():
        for name, value in [*neuron.named_parameters(recurse=False), *neuron.named_buffers(recurse=False)]:
            if name in reference:
                if value.shape == reference[name].shape:
                    value.copy_(reference[name])
                else:
                    setattr(neuron, name, reference[name].clone().to(value.device))


def make_shardable(neuron: nn.Module) -> nn.Module:
    """Fit a backend layer's own parameters to FSDP, which refuses 0-dim parameters: each scalar parameter
    (sinabs' threshold, LIF's tau) becomes a one-element vector of the same value and `requires_grad` (buffers
    would not do: sinabs treats every buffer as neuron state). Frozen and trainable parameters then share a unit,
    hence `use_orig_params: true` in `conf/trainer/fsdp.yaml`. The layer computes the same."""
    for name, param in list(neuron.named_parameters(recurse=False)):
        if param.dim() == 0:
            setattr(neuron, name, nn.Parameter(param.detach().reshape(1), requires_grad=param.requires_grad))
    return neuron


class SpikingLayer(nn.Module):
    """Linear -> spiking layer (one FSDP unit).

    Backend layers have no `reset_parameters`, which a meta-device build needs (FSDP calls it on every module
    that owns tensors when it materialises a unit): each neuron gets one that restores the tensors of a
    reference layer the factory built on the CPU.
    """

    def __init__(self, linear: nn.Linear, neuron: nn.Module, reference: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.linear, self.neuron = linear, neuron
        ref = {k: v.detach().clone() for k, v in reference.items()}
        if not hasattr(neuron, "reset_parameters"):
            neuron.reset_parameters = partial(restore_neuron, neuron, ref)  # type: ignore[method-assign]
        self._reference = ref

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()
        restore_neuron(self.neuron, self._reference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # backend layers keep float32 state, so spikes come out float32: cast for weights in bf16 (bf16-true)
        return self.neuron(self.linear(x.to(self.linear.weight.dtype)))


class SNNCore(nn.Module):
    """`tokens (B, N, dim) -> (readout (B, N, dim), spikes (B, N, hidden))`."""

    def __init__(self, dim: int, backend: NeuronFactory, hidden_dim: int = 11520, n_layers: int = 4,
                 neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        positive_int("model.net.snn.hidden_dim", hidden_dim)
        positive_int("model.net.snn.n_layers", n_layers)
        if not callable(backend):
            raise ConfigError("model.net.snn.backend must be a neuron factory (set by the `backend` group)")
        neuron = dict(neuron or {})
        self.hidden_dim = hidden_dim
        self.norm = nn.LayerNorm(dim)
        layers = spiking_mlp(dim, hidden_dim, n_layers, dim, backend, neuron)
        with torch.device("cpu"):
            ref_layer = make_shardable(backend(**neuron))
            reference = {**dict(ref_layer.named_parameters(recurse=False)),
                         **dict(ref_layer.named_buffers(recurse=False))}
        self.layers = nn.ModuleList(
            SpikingLayer(layers[i], make_shardable(layers[i + 1]), reference) for i in range(0, 2 * n_layers, 2))
        self.readout = layers[-1]
        self.gain = nn.Parameter(torch.ones(1))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gain.fill_(1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm(x)
        for layer in self.layers:
            h = layer(h)
        return self.readout(h.to(self.readout.weight.dtype)) * self.gain / self.hidden_dim**0.5, h
