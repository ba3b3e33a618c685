"""Neuromorphic cost metrics (NeuroBench conventions), counted with forward hooks on any net.

- SynOps: accumulates driven by spikes: for a Linear/Conv layer whose input holds spike counts (non-negative
  integers), every input spike triggers one accumulate per outgoing synapse (fan-out).
- MACs: dense multiply-accumulates of layers whose input is real-valued (not spikes).
- Activation sparsity: 1 - (non-zero outputs / outputs) of the spiking layers, per layer and overall.
- Connection sparsity: fraction of zero weights in Linear/Conv layers. Footprint: bytes of parameters + buffers.
- Energy: SynOps x E_AC + MACs x E_MAC, with per-op energies from config.

Counts are per sample (averaged over the samples seen). Conv fan-out ignores border effects (each input
element is counted with the full kernel fan-out), as NeuroBench's own approximation does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from brainlab.snn.factory import spiking_layers

SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_spike_tensor(x: torch.Tensor) -> bool:
    """Spike counts: non-negative integers (binary spikes, multi-spikes, event counts)."""
    return bool(torch.all(x >= 0)) and bool(torch.all(x == torch.round(x)))


def fan_out(layer: nn.Module) -> int:
    """Outgoing synapses of one input element."""
    if isinstance(layer, nn.Linear):
        return layer.out_features
    return (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)


def dense_macs(layer: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of one dense evaluation of `layer`."""
    if isinstance(layer, nn.Linear):
        return (x.numel() // layer.in_features) * layer.in_features * layer.out_features
    return out.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)


def connection_sparsity(model: nn.Module) -> float:
    weights = [m.weight for m in model.modules() if isinstance(m, SYNAPTIC)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def footprint_bytes(model: nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class CostCounts:
    """Running totals; `summary()` gives per-sample figures."""

    samples: int = 0
    synops: float = 0.0
    macs: float = 0.0
    layer_nonzero: dict[str, float] = field(default_factory=dict)
    layer_total: dict[str, float] = field(default_factory=dict)

    def summary(self, e_ac_pj: float, e_mac_pj: float) -> dict[str, Any]:
        n = max(self.samples, 1)
        layers = {k: 1.0 - self.layer_nonzero[k] / t for k, t in self.layer_total.items() if t}
        total = sum(self.layer_total.values())
        overall = 1.0 - sum(self.layer_nonzero.values()) / total if total else float("nan")
        synops, macs = self.synops / n, self.macs / n
        return {
            "samples": self.samples,
            "synops": synops,
            "macs": macs,
            "energy_uj": (synops * e_ac_pj + macs * e_mac_pj) * 1e-6,
            "activation_sparsity": overall,
            "activation_sparsity_per_layer": layers,
        }


@contextmanager
def count_costs(model: nn.Module) -> Iterator[CostCounts]:
    """Count SynOps, MACs and spiking-layer sparsity of every forward pass inside the block."""
    counts = CostCounts()
    handles = []

    def count_samples(_m: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor):
            counts.samples += args[0].shape[0]

    def count_ops(layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        x = args[0].detach()
        if is_spike_tensor(x):
            counts.synops += float(x.sum()) * fan_out(layer)
        else:
            counts.macs += dense_macs(layer, x, out)

    def count_spikes(name: str) -> Any:
        def hook(_m: nn.Module, _args: tuple, out: torch.Tensor) -> None:
            counts.layer_nonzero[name] = counts.layer_nonzero.get(name, 0.0) + float((out != 0).sum())
            counts.layer_total[name] = counts.layer_total.get(name, 0.0) + out.numel()

        return hook

    handles.append(model.register_forward_pre_hook(count_samples))
    handles += [m.register_forward_hook(count_ops) for m in model.modules() if isinstance(m, SYNAPTIC)]
    handles += [layer.register_forward_hook(count_spikes(name)) for name, layer in spiking_layers(model)]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()
