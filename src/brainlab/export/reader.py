"""The project's NIR reader: a brainlab NIR file back as sinabs layers with the exported semantics.

`read_nir(path, batch_size)` builds one torch module per node (sinabs `*Squeeze` neurons, which take
`(batch * time, ...)`), runs them in the graph's order and sums a node's inputs (residual edges); a recurrent
subgraph (`neuron -> w_rec -> neuron`) becomes a sinabs recurrent layer. Each neuron's reset, spike function and
membrane floor come from its node metadata (NIR 1.0 neuron nodes carry none of them); the input resistance `r` is
honoured (`r = 1`: NIR's `V += (1 - alpha) I`, sinabs's `norm_input`). Plain `sinabs.from_nir` reads only chains of
Affine/Conv2d/SumPool2d/Flatten/IF/LIF/LI nodes, without metadata and ignoring `r`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np
import sinabs
import sinabs.activation as sa
import sinabs.layers as sl
import torch
from nirtorch.utils import sanitize_name
from torch import nn

from brainlab.core.errors import DataError
from brainlab.snn.fastsnn import SILENT, SilenceAfterSpike

SPIKE_FNS = {"SingleSpike": sa.SingleSpike, "MultiSpike": sa.MultiSpike}


def restore_semantics(module: nn.Module, meta: dict[str, Any], name: str = "") -> None:
    """Set a sinabs neuron's reset, spike function and membrane floor from its brainlab node metadata."""
    if not isinstance(module, sl.LIF) or not str(meta.get("source", "")).startswith("brainlab"):
        return
    meta = {key: str(value) for key, value in meta.items()}
    if "min_v_mem" in meta:
        module.min_v_mem = None if meta["min_v_mem"] == "none" else float(meta["min_v_mem"])
    if module.spike_fn is None:  # a readout (ExpLeak) has nothing else to restore
        return
    reset = meta.get("reset")
    if reset == "first_spike_only":
        module.reset_fn = SilenceAfterSpike(float(meta.get("reset_value", SILENT)))
    elif reset == "MembraneReset":
        module.reset_fn = sa.MembraneReset(float(meta.get("reset_value", 0.0)))
    elif reset == "MembraneSubtract":
        value = meta.get("subtract_value", "threshold")
        module.reset_fn = sa.MembraneSubtract(None if value == "threshold" else float(value))
    elif reset is not None:
        raise DataError(f"NIR node {name!r}: unknown reset {reset!r} in its metadata; export it again with brainlab")
    spike_fn = meta.get("spike_fn")
    if spike_fn == "MaxSpike":
        module.spike_fn = sa.MaxSpike(int(meta.get("max_spikes_per_step", 1)))
    elif spike_fn in SPIKE_FNS:
        module.spike_fn = SPIKE_FNS[spike_fn]
    elif spike_fn is not None:
        raise DataError(f"NIR node {name!r}: unknown spike_fn {spike_fn!r} in its metadata; export it again")


def tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


class Scaled(nn.Module):
    """`layer(scale * x)`: a neuron whose NIR input resistance is not what its sinabs form assumes."""

    def __init__(self, layer: nn.Module, scale: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x * self.scale)


class PerSample(nn.Module):
    """A `(batch, time, ...)` sinabs layer on `(batch * time, ...)` input."""

    def __init__(self, layer: nn.Module, batch_size: int | None, num_timesteps: int | None) -> None:
        super().__init__()
        self.layer, self.batch_size, self.num_timesteps = layer, batch_size, num_timesteps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.batch_size or x.shape[0] // self.num_timesteps
        y = self.layer(x.reshape(batch, x.shape[0] // batch, *x.shape[1:]))
        return y.reshape(x.shape)


def neuron_layer(node: nir.NIRNode, name: str, batch: int | None, steps: int | None,
                 rec: nn.Linear | None = None) -> nn.Module:
    """The sinabs layer of one neuron node (recurrent with `rec`), semantics restored from its metadata."""
    meta = dict(getattr(node, "metadata", None) or {})
    squeeze = dict(batch_size=batch, num_timesteps=steps)
    rec_kw = {} if rec is None else {"rec_connect": rec}
    scale: np.ndarray | None = None
    if isinstance(node, nir.LI):
        layer: nn.Module = sl.ExpLeakSqueeze(tau_mem=tensor(node.tau), norm_input=False, **squeeze)
        scale = np.asarray(node.r, np.float32)
    elif isinstance(node, nir.IF) or meta.get("neuron") == "IAF":
        tau_syn = tensor(node.tau_syn) if isinstance(node, nir.CubaLIF) else None
        common = dict(spike_threshold=tensor(node.v_threshold), tau_syn=tau_syn, min_v_mem=None, **rec_kw)
        layer = sl.IAFRecurrent(**common) if rec is not None else sl.IAFSqueeze(**common, **squeeze)
        if isinstance(node, nir.IF):
            layer.min_v_mem = -tensor(node.v_threshold)  # sinabs's reading, unless the metadata says otherwise
        scale = np.asarray(node.r, np.float32)
    elif isinstance(node, nir.LIF | nir.CubaLIF):
        cuba = isinstance(node, nir.CubaLIF)
        tau = node.tau_mem if cuba else node.tau
        alpha = np.exp(-1.0 / np.asarray(tau, np.float64))
        gain = np.asarray(node.r, np.float64) * (1 - alpha)
        if cuba:
            gain = gain * np.asarray(node.w_in, np.float64) * (1 - np.exp(-1.0 / np.asarray(node.tau_syn, np.float64)))
        norm_input = bool(np.allclose(node.r, 1.0) and not cuba)
        common = dict(tau_mem=tensor(tau), tau_syn=tensor(node.tau_syn) if cuba else None, norm_input=norm_input,
                      spike_threshold=tensor(node.v_threshold), min_v_mem=None, **rec_kw)
        layer = sl.LIFRecurrent(**common) if rec is not None else sl.LIFSqueeze(**common, **squeeze)
        scale = None if norm_input else gain.astype(np.float32)
    else:
        raise DataError(f"NIR node {name!r}: {type(node).__name__} is not a neuron")
    restore_semantics(layer, meta, name)
    if rec is not None:
        layer = PerSample(layer, batch, steps)
    if scale is not None and not np.allclose(scale, 1.0, rtol=1e-6, atol=0):
        if rec is not None:
            raise DataError(f"NIR node {name!r}: a recurrent neuron with input resistance r != 1 / (1 - alpha)")
        layer = Scaled(layer, tensor(scale))
    return layer


def node_module(node: nir.NIRNode, name: str, batch: int | None, steps: int | None) -> nn.Module | None:
    """The torch module of one node (None: Input/Output)."""
    if isinstance(node, nir.Input | nir.Output):
        return None
    if isinstance(node, nir.Affine | nir.Linear):
        bias = getattr(node, "bias", None)
        linear = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=bias is not None)
        linear.weight.data = tensor(node.weight)
        if bias is not None:
            linear.bias.data = tensor(bias)
        return linear
    if isinstance(node, nir.Conv2d):
        conv = nn.Conv2d(node.weight.shape[1] * int(node.groups), node.weight.shape[0], node.weight.shape[2:],
                         stride=tuple(int(s) for s in np.atleast_1d(node.stride)),
                         padding=tuple(int(p) for p in np.atleast_1d(node.padding)),
                         dilation=tuple(int(d) for d in np.atleast_1d(node.dilation)), groups=int(node.groups))
        conv.weight.data, conv.bias.data = tensor(node.weight), tensor(node.bias)
        return conv
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(tuple(int(k) for k in node.kernel_size), tuple(int(s) for s in node.stride),
                            tuple(int(p) for p in node.padding))
    if isinstance(node, nir.SumPool2d):
        if np.any(np.asarray(node.padding) != 0):
            raise DataError(f"NIR node {name!r}: SumPool2d with padding is not read")
        return sl.SumPool2d(tuple(int(k) for k in node.kernel_size), tuple(int(s) for s in node.stride))
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
        return nn.Flatten(start, end)
    if isinstance(node, nir.NIRGraph):
        return recurrent_layer(node, name, batch, steps)
    return neuron_layer(node, name, batch, steps)


def recurrent_layer(graph: nir.NIRGraph, name: str, batch: int | None, steps: int | None) -> nn.Module:
    """A subgraph `input -> neuron -> output` with `neuron -> w -> neuron` as a sinabs recurrent layer."""
    neurons = [(k, n) for k, n in graph.nodes.items() if isinstance(n, nir.IF | nir.LIF | nir.CubaLIF)]
    weights = [(k, n) for k, n in graph.nodes.items() if isinstance(n, nir.Linear | nir.Affine)]
    if len(neurons) != 1 or len(weights) != 1:
        raise DataError(f"NIR subgraph {name!r}: only a recurrent neuron (one neuron, one recurrent weight) is read")
    (neuron_name, neuron), (w_name, w) = neurons[0], weights[0]
    if {(neuron_name, w_name), (w_name, neuron_name)} - set(graph.edges):
        raise DataError(f"NIR subgraph {name!r}: {w_name!r} is not a recurrent edge of {neuron_name!r}")
    rec = nn.Linear(w.weight.shape[1], w.weight.shape[0], bias=isinstance(w, nir.Affine))
    rec.weight.data = tensor(w.weight)
    if isinstance(w, nir.Affine):
        rec.bias.data = tensor(w.bias)
    return neuron_layer(neuron, f"{name}.{neuron_name}", batch, steps, rec=rec)


class NIRNet(nn.Module):
    """A NIR graph (without cycles outside recurrent subgraphs) on `(batch * time, *features)` input."""

    def __init__(self, graph: nir.NIRGraph, batch_size: int | None, num_timesteps: int | None) -> None:
        super().__init__()
        if batch_size is None and num_timesteps is None:
            raise DataError("read_nir needs batch_size or num_timesteps (the input is (batch * time, ...))")
        self.layers = nn.ModuleDict()
        self.sources: dict[str, list[str]] = {sanitize_name(n): [] for n in graph.nodes}
        for src, dst in graph.edges:
            self.sources[sanitize_name(dst)].append(sanitize_name(src))
        self.inputs = [sanitize_name(n) for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
        self.outputs = [sanitize_name(n) for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise DataError(f"read_nir reads graphs with one input and one output, got {self.inputs} / {self.outputs}")
        self.order: list[str] = []
        done = set(self.inputs)
        pending = [sanitize_name(n) for n in graph.nodes if sanitize_name(n) not in done]
        while pending:
            ready = [n for n in pending if all(s in done for s in self.sources[n])]
            if not ready:
                raise DataError(f"NIR graph has a cycle outside a recurrent subgraph among {pending}")
            for name in ready:
                pending.remove(name)
                done.add(name)
                self.order.append(name)
        for name, node in graph.nodes.items():
            module = node_module(node, name, batch_size, num_timesteps)
            if module is not None:
                self.layers[sanitize_name(name)] = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.inputs[0]: x}
        for name in self.order:
            inputs = [values[s] for s in self.sources[name]]
            y = inputs[0] if len(inputs) == 1 else torch.stack(inputs).sum(0)
            values[name] = self.layers[name](y) if name in self.layers else y
        return values[self.outputs[0]]

    def reset_states(self) -> None:
        for module in self.modules():
            if isinstance(module, sl.StatefulLayer):
                module.reset_states()


def read_nir(path: str | Path, batch_size: int | None = None, num_timesteps: int | None = None) -> NIRNet:
    """A brainlab NIR file as a torch module on `(batch * time, *features)`: the exported net's spikes and outputs
    (each neuron's reset, spike function and membrane floor restored from its node metadata)."""
    return NIRNet(nir.read(str(path)), batch_size, num_timesteps)


def plain_import_differences(path: str | Path) -> list[str]:
    """Nodes of a brainlab NIR file that plain `sinabs.from_nir` cannot read or reads with other semantics than
    `read_nir` (reset, spike function, membrane floor)."""
    graph = nir.read(str(path))
    exact = {name: module for name, module in read_nir(path, batch_size=1).layers.items()}
    unreadable = [name for name, node in graph.nodes.items()
                  if not isinstance(node, nir.Input | nir.Output)
                  and (isinstance(node, nir.NIRGraph | nir.CubaLIF | nir.AvgPool2d | nir.Linear | nir.Scale)
                       or not isinstance(node, nir.Affine | nir.Conv2d | nir.SumPool2d | nir.Flatten | nir.IF
                                         | nir.LIF | nir.LI))]
    if unreadable:
        return unreadable
    plain = dict(sinabs.from_nir(graph, batch_size=1).named_children())
    keys = ("reset_fn", "spike_fn", "min_v_mem")
    changed = []
    for name, module in exact.items():
        module = module.layer if isinstance(module, Scaled) else module
        if isinstance(module, sl.LIF) and any(comparable(getattr(module, k)) != comparable(getattr(plain[name], k))
                                              for k in keys):
            changed.append(name)
    return changed


def comparable(value: Any) -> Any:
    """Numbers, arrays and tensors as a tuple of floats (sinabs keeps an IF's floor as the threshold array)."""
    if isinstance(value, torch.Tensor | np.ndarray | float | int):
        return tuple(np.atleast_1d(torch.as_tensor(value).detach().cpu().double().numpy()).ravel())
    return value
