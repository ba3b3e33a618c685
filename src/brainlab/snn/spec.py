"""The `model.net.neuron.*` knobs every backend understands, validated once (one line per bad value)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from brainlab.errors import ConfigError
from brainlab.snn.factory import check_choice

KINDS = ("iaf", "lif")
SPIKE_FNS = ("multi", "single")
RESETS = ("subtract", "zero")
SURROGATES = ("single_exponential", "heaviside", "periodic_exponential", "gaussian")
KNOWN = ("kind", "spike_threshold", "spike_fn", "reset", "surrogate", "min_v_mem", "tau_mem", "tau_syn")


@dataclass(frozen=True)
class NeuronSpec:
    """One validated neuron configuration (same meaning as sinabs's IAF / LIF arguments)."""

    kind: str = "iaf"
    spike_threshold: float = 1.0
    spike_fn: str = "multi"
    reset: str = "subtract"
    surrogate: str = "single_exponential"
    min_v_mem: float | None = None
    tau_mem: float | None = None
    tau_syn: float | None = None

    @property
    def leaky(self) -> bool:
        return self.kind == "lif"


def parse_neuron(backend: str, params: Mapping[str, Any], known: Iterable[str] = KNOWN) -> NeuronSpec:
    """Validate `params` (the neuron knobs) for `backend`; raises ConfigError naming the key and the fix."""
    known = tuple(known)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"model.net.neuron has unknown keys {unknown} for backend={backend}; known: {', '.join(known)}"
        )
    spec = NeuronSpec(**{k: v for k, v in params.items() if k in KNOWN})
    check_choice("model.net.neuron.kind", spec.kind, KINDS)
    check_choice("model.net.neuron.spike_fn", spec.spike_fn, SPIKE_FNS)
    check_choice("model.net.neuron.reset", spec.reset, RESETS)
    check_choice("model.net.neuron.surrogate", spec.surrogate, SURROGATES)
    if spec.spike_threshold <= 0:
        raise ConfigError(f"model.net.neuron.spike_threshold must be > 0, got {spec.spike_threshold}")
    if spec.kind == "lif" and (spec.tau_mem is None or spec.tau_mem <= 0):
        raise ConfigError(f"model.net.neuron.tau_mem must be > 0 for kind=lif, got {spec.tau_mem}")
    if spec.tau_syn is not None and spec.tau_syn <= 0:
        raise ConfigError(f"model.net.neuron.tau_syn must be > 0 (or null), got {spec.tau_syn}")
    return spec
