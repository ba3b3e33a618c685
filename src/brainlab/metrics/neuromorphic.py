"""Neuromorphic cost metrics with NeuroBench's definitions (NeuroBench 2.3.0), counted with forward hooks on any net.

`measure(model, batches)` runs `model` on `batches` and returns the figures below; the test-time callback
(`brainlab.callbacks.neuromorphic`) counts the same way (`count_costs`) while Lightning tests the model. Every
count is per sample (divided by the number of samples seen) and summed over all time steps.

Synaptic layers are `nn.Linear` and `nn.Conv1d/2d/3d` anywhere in the model, including the recurrent weight of a
recurrent spiking layer (`rec_connect`, a bias-free Linear applied to the layer's spikes at every step). For every
call of such a layer (one hook call; sinabs's recurrent layers call `rec_connect` once per time step):

- the call's input `x` is *spikes* when every value of `x` is -1, 0 or 1; otherwise (real values, or spike counts
  above 1: event frames, multi-spike neurons) the whole call counts as multiply-accumulates. This is NeuroBench's
  rule (`SynapticOperations`: a layer call whose input holds values outside {-1, 0, 1} counts as MACs);
- effective operations of the call = `layer(x != 0, weight != 0)` summed, i.e. the conv / linear of the 0/1 input
  with the 0/1 weights and no bias: one operation per (non-zero input, non-zero weight) pair that meets in an
  output. This is exact for stride, padding (zero padding adds nothing), dilation and groups, and skips pruned
  (zero) weights;
- dense operations of the call = the same with all-ones input and weights (zero padding still adds nothing);
- biases are never counted (as NeuroBench).

Figures (`summary()` / `measure()` keys):

- `synops`: effective accumulates of spike calls (NeuroBench `Effective_ACs`).
- `macs`: effective multiply-accumulates of non-spike calls (NeuroBench `Effective_MACs`).
- `dense_ops`: dense operations of all calls (NeuroBench `Dense`).
- `synops_spike_count`: brainlab's own figure beside them: effective operations weighted by the input value for
  calls whose input holds non-negative integers (spike counts), so an input count k on a synapse is k accumulates;
  equal to `synops` when all inputs are binary. Not a NeuroBench figure.
- `energy_uj`: `synops x e_ac_pj + macs x e_mac_pj` (per-op energies stated in the summary), in µJ.
- `activation_sparsity`: 1 - non-zero outputs / outputs over all spiking layers (NeuroBench `ActivationSparsity`
  with the spiking layers as the activation modules); `activation_sparsity_per_layer` the same per layer
  (NeuroBench `ActivationSparsityByLayer`, which names a layer by its last name component).
- `firing_rate_per_layer`: spikes (the sum of the outputs) per neuron per time step.
- `membrane_updates`: neuron-steps of the spiking layers (every neuron's membrane is integrated at every time step
  in brainlab's clock-driven layers). NeuroBench's `MembraneUpdates` counts only membranes that changed and reads
  snnTorch's `mem` attribute, so it records nothing for sinabs-style layers: no NeuroBench figure to compare.
- `connection_sparsity`: zero weights / weights of the synaptic layers (NeuroBench `ConnectionSparsity`, which
  rounds to 4 decimals).
- `footprint_bytes`: bytes of all parameters and buffers except neuron state (the buffers a spiking layer holds
  itself: membrane, synaptic current, adaptive threshold), so it does not depend on the batch size. NeuroBench's
  `Footprint` counts all buffers; both are equal on a freshly built model, whose state buffers are empty.
- `silent_layers` / `saturated_layers`: spiking layers that never fired / whose every neuron fired at every step.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.snn.factory import reset_states, spiking_layers

SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 32-bit float): add 0.9 pJ, multiply 3.7 pJ
E_AC_PJ, E_MAC_PJ = 0.9, 4.6

#: counters summed over samples (and over ranks under DDP); per-layer counters are `<kind>/<layer name>`
TOTALS = ("samples", "synops", "macs", "dense_ops", "synops_spike_count", "membrane_updates")


def is_spike_tensor(x: torch.Tensor) -> bool:
    """NeuroBench's rule: every value is -1, 0 or 1."""
    return not bool(((x != 0) & (x != 1) & (x != -1)).any())


def _apply(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`layer`'s linear map of `x` with `weight` instead of its own weight, without bias."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight)
    return layer._conv_forward(x, weight, None)  # stride, padding (mode), dilation, groups as the layer has them


def layer_ops(layer: nn.Module, x: torch.Tensor) -> tuple[float, float | None]:
    """(effective operations, spike-count-weighted operations or None) of one call of `layer` on input `x`.

    Effective: one per (non-zero input, non-zero weight) pair meeting in an output. Spike-count-weighted: the same
    with every input weighted by its value, for non-negative integer inputs (None otherwise).
    """
    w = (layer.weight.detach() != 0).float()
    nz = (x != 0).float()
    effective = float(_apply(layer, nz, w).sum(dtype=torch.float64))
    if is_spike_tensor(x):
        return effective, effective if bool((x >= 0).all()) else None
    if bool((x >= 0).all()) and bool((x == torch.round(x)).all()):
        return effective, float(_apply(layer, x.float(), w).sum(dtype=torch.float64))
    return effective, None


def dense_ops(layer: nn.Module, shape: torch.Size) -> float:
    """Operations of one dense call on an input of `shape` (all inputs and weights taken as non-zero)."""
    ones = torch.ones(shape, device=layer.weight.device)
    return float(_apply(layer, ones, torch.ones_like(layer.weight, dtype=torch.float32)).sum(dtype=torch.float64))


def connection_sparsity(model: nn.Module) -> float:
    """Zero weights / weights of every Linear and Conv layer (biases are not connections)."""
    weights = [m.weight for m in model.modules() if isinstance(m, SYNAPTIC)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def neuron_state(model: nn.Module) -> set[int]:
    """Ids of the neuron-state tensors: the buffers a spiking or other stateful layer (one with `reset_states`,
    below `model`) holds itself, not its submodules' (a recurrent layer's `rec_connect` is a synapse)."""
    stateful = [m for _, m in spiking_layers(model)]
    stateful += [m for m in model.modules() if m is not model and callable(getattr(m, "reset_states", None))]
    return {id(b) for layer in stateful for b in layer.buffers(recurse=False)}


def footprint_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers without neuron state (independent of the batch size)."""
    state = neuron_state(model)
    tensors = [*model.parameters(), *(b for b in model.buffers() if id(b) not in state)]
    return sum(t.numel() * t.element_size() for t in tensors)


def _output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


@dataclass
class CostCounts:
    """Running totals (`totals`, flat so they reduce across ranks as one vector); `summary()` gives per-sample
    figures. `layers` are the spiking layers' names in model order."""

    layers: list[str] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in TOTALS:
            self.totals.setdefault(key, 0.0)
        for name in self.layers:
            for kind in ("nonzero", "spikes", "total"):
                self.totals.setdefault(f"{kind}/{name}", 0.0)

    def add(self, key: str, value: float) -> None:
        self.totals[key] = self.totals.get(key, 0.0) + value

    @property
    def samples(self) -> int:
        return int(self.totals["samples"])

    def as_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The totals in sorted-key order (the same on every rank), float64."""
        return torch.tensor([self.totals[k] for k in sorted(self.totals)], dtype=torch.float64, device=device)

    def load_tensor(self, values: torch.Tensor) -> None:
        """Take totals back from `as_tensor`'s order (e.g. after a sum across ranks)."""
        for key, value in zip(sorted(self.totals), values.tolist(), strict=True):
            self.totals[key] = value

    def summary(self, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> dict[str, Any]:
        t, n = self.totals, max(self.samples, 1)
        per = {k: t[k] / n for k in TOTALS if k != "samples"}
        totals = {name: t[f"total/{name}"] for name in self.layers}
        nonzero = {name: t[f"nonzero/{name}"] for name in self.layers}
        all_total = sum(totals.values())
        return {
            "samples": self.samples,
            **per,
            "energy_uj": (per["synops"] * e_ac_pj + per["macs"] * e_mac_pj) * 1e-6,
            "energy_per_op_pj": {"ac": e_ac_pj, "mac": e_mac_pj},
            "activation_sparsity": 1.0 - sum(nonzero.values()) / all_total if all_total else float("nan"),
            "activation_sparsity_per_layer": {k: 1.0 - nonzero[k] / v for k, v in totals.items() if v},
            "firing_rate_per_layer": {k: t[f"spikes/{k}"] / v for k, v in totals.items() if v},
            "silent_layers": [k for k, v in totals.items() if v and nonzero[k] == 0],
            "saturated_layers": [k for k, v in totals.items() if v and nonzero[k] == v],
        }


def activity_warnings(summary: dict[str, Any]) -> list[str]:
    """One sentence per silent or saturated spiking layer."""
    notes = [f"spiking layer {name} is silent: no spike on the whole set (rate 0)" for name in summary["silent_layers"]]
    saturated = summary["saturated_layers"]
    notes += [f"spiking layer {name} is saturated: every neuron fired at every time step" for name in saturated]
    return notes


@contextmanager
def count_costs(model: nn.Module) -> Iterator[CostCounts]:
    """Count every forward pass of `model` inside the block (see the module docstring for what is counted).

    Samples are counted from the first dimension of the first tensor argument of `model`'s own forward calls.
    """
    layers = spiking_layers(model)
    counts = CostCounts(layers=[name for name, _ in layers])
    handles = []
    dense_cache: dict[tuple[int, torch.Size], float] = {}
    called: dict[int, bool] = {}  # rec_connect Linear -> whether it was called during its spiking layer's forward

    def count_samples(_m: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor):
            counts.add("samples", args[0].shape[0])

    def count_call(layer: nn.Module, x: torch.Tensor) -> None:
        effective, by_count = layer_ops(layer, x)
        counts.add("synops" if is_spike_tensor(x) else "macs", effective)
        counts.add("synops_spike_count", effective if by_count is None else by_count)
        key = (id(layer), x.shape)
        if key not in dense_cache:
            dense_cache[key] = dense_ops(layer, x.shape)
        counts.add("dense_ops", dense_cache[key])

    def count_ops(layer: nn.Module, args: tuple, _out: Any) -> None:
        called[id(layer)] = True
        with torch.no_grad():
            count_call(layer, args[0].detach())

    def start_layer(rec: nn.Module | None) -> Any:
        def hook(_m: nn.Module, _args: tuple) -> None:
            if rec is not None:
                called[id(rec)] = False

        return hook

    def count_spikes(name: str, rec: nn.Module | None) -> Any:
        def hook(_m: nn.Module, _args: tuple, out: Any) -> None:
            spikes = _output(out).detach()
            counts.add(f"nonzero/{name}", float((spikes != 0).sum()))
            counts.add(f"spikes/{name}", float(spikes.sum(dtype=torch.float64)))
            counts.add(f"total/{name}", spikes.numel())
            counts.add("membrane_updates", spikes.numel())
            if rec is not None and not called.get(id(rec), True):
                # a fused kernel applied rec_connect's weight itself: count the per-step calls sinabs would make
                with torch.no_grad():
                    steps = spikes.flatten(start_dim=2)
                    for t in range(steps.shape[1]):
                        count_call(rec, steps[:, t])

        return hook

    handles.append(model.register_forward_pre_hook(count_samples))
    handles += [m.register_forward_hook(count_ops) for m in model.modules() if isinstance(m, SYNAPTIC)]
    for name, layer in layers:
        rec = getattr(layer, "rec_connect", None)
        rec = rec if isinstance(rec, nn.Linear) else None
        handles.append(layer.register_forward_pre_hook(start_layer(rec)))
        handles.append(layer.register_forward_hook(count_spikes(name, rec)))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def finish(counts: CostCounts, model: nn.Module, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> dict:
    """`counts.summary()` plus the static figures of `model` (connection sparsity, footprint)."""
    summary = counts.summary(e_ac_pj, e_mac_pj)
    summary["connection_sparsity"] = connection_sparsity(model)
    summary["footprint_bytes"] = footprint_bytes(model)
    return summary


def inputs_of(batch: Any) -> torch.Tensor:
    """The model input of a batch: the tensor itself, or the first element of an `(inputs, targets, ...)` batch."""
    return batch if isinstance(batch, torch.Tensor) else batch[0]


def measure(
    model: nn.Module, batches: Iterable[Any], e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ,
    warn: bool = True,
) -> dict[str, Any]:
    """Run `model` (in eval mode, no grad, states reset before every batch) on `batches` and return its neuromorphic
    figures per sample (keys and definitions: the module docstring). `batches` yield input tensors
    `(batch, time, ...)` or `(inputs, targets, ...)` tuples, e.g. a test DataLoader. Silent or saturated spiking
    layers are warned about (`warn=False` to only list them)."""
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad(), count_costs(model) as counts:
            for batch in batches:
                reset_states(model.modules())
                model(inputs_of(batch).to(device))
    finally:
        model.train(was_training)
    summary = finish(counts, model, e_ac_pj, e_mac_pj)
    if warn:
        for note in activity_warnings(summary):
            warnings.warn(note, stacklevel=2)
    return summary
