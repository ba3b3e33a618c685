"""The `model.net.neuron.*` knobs every backend understands, validated once (one line per bad value).

Kinds (sinabs's layers are the reference): `iaf`, `lif`, `alif` (adaptive threshold, Bellec et al. 2018);
`recurrent=true` adds a recurrent weight on the spikes (sinabs's *Recurrent layers, `rec_connect` a bias-free
Linear of the layer width, which the net passes as `features`); `train_tau=true` makes the time constants
learnable parameters; `surrogate` picks sinabs's surrogate gradient and `surrogate_args` its arguments.
A backend states what it can express (`Backend.support`, see `plug.py`); anything else is refused naming the key
and the discovered backends that do support it, never silently replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from brainlab.core.checks import check_choice
from brainlab.core.errors import ConfigError
from brainlab.snn.plug import KINDS, RESETS, Support, backends, find

SPIKE_FNS = ("multi", "single")
SURROGATES = ("single_exponential", "heaviside", "periodic_exponential", "gaussian", "multi_gaussian")
KNOWN = (
    "kind", "spike_threshold", "spike_fn", "reset", "surrogate", "surrogate_args", "min_v_mem", "tau_mem",
    "tau_syn", "tau_adapt", "adapt_scale", "recurrent", "train_tau", "features",
)


@dataclass(frozen=True)
class NeuronSpec:
    """One validated neuron configuration (same meaning as sinabs's IAF / LIF / ALIF arguments)."""

    kind: str = "iaf"
    spike_threshold: float = 1.0
    spike_fn: str = "multi"
    reset: str = "subtract"
    surrogate: str = "single_exponential"
    surrogate_args: tuple[tuple[str, float], ...] = ()
    min_v_mem: float | None = None
    tau_mem: float | None = None
    tau_syn: float | None = None
    tau_adapt: float | None = None
    adapt_scale: float = 1.8
    recurrent: bool = False
    train_tau: bool = False
    features: int | None = None

    @property
    def leaky(self) -> bool:
        return self.kind in ("lif", "alif")

    @property
    def adaptive(self) -> bool:
        return self.kind == "alif"


def _others(pred: Any) -> str:
    """The discovered backends whose support passes `pred`."""
    names = [name for name, plug in backends().items() if plug.support is not None and pred(plug.support)]
    return ", ".join(f"backend={name}" for name in names) or "none"


def check_support(backend: str, spec: NeuronSpec, sup: Support | None = None) -> None:
    """Refuse what `backend` cannot express (one line: the key, the value, who supports it)."""
    if sup is None:
        plug = find(backend)
        if plug is None or plug.support is None:
            return
        sup = plug.support
    if spec.kind not in sup.kinds:
        raise ConfigError(
            f"model.net.neuron.kind={spec.kind} is not supported by backend={backend}; "
            f"use {_others(lambda s: spec.kind in s.kinds)}"
        )
    if spec.reset not in sup.resets:
        raise ConfigError(
            f"model.net.neuron.reset={spec.reset} is not supported by backend={backend}; "
            f"use {_others(lambda s: spec.reset in s.resets)} (or reset=subtract)"
        )
    if spec.recurrent and not sup.recurrent:
        raise ConfigError(
            f"model.net.neuron.recurrent=true is not supported by backend={backend}; "
            f"use {_others(lambda s: s.recurrent)}"
        )
    if spec.tau_syn is not None and spec.kind not in sup.tau_syn_kinds:
        raise ConfigError(
            f"model.net.neuron.tau_syn is not supported with kind={spec.kind} by backend={backend} "
            f"(sinabs's ALIF does not carry its synaptic state); set it to null"
        )


def _surrogate_args(value: Any) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"model.net.neuron.surrogate_args must be a mapping of the surrogate's arguments, got {value!r}"
        )
    return tuple(sorted((str(k), float(v)) for k, v in value.items()))


def surrogate_kwargs(spec: NeuronSpec) -> dict[str, float]:
    return dict(spec.surrogate_args)


def parse_neuron(backend: str, params: Mapping[str, Any], known: Iterable[str] = KNOWN) -> NeuronSpec:
    """Validate `params` (the neuron knobs) for `backend`; raises ConfigError naming the key and the fix."""
    known = tuple(known)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"model.net.neuron has unknown keys {unknown} for backend={backend}; known: {', '.join(known)}"
        )
    values = {k: v for k, v in params.items() if k in KNOWN}
    values["surrogate_args"] = _surrogate_args(values.get("surrogate_args"))
    if values.get("adapt_scale") is None:
        values.pop("adapt_scale", None)
    spec = NeuronSpec(**values)
    check_choice("model.net.neuron.kind", spec.kind, KINDS)
    check_choice("model.net.neuron.spike_fn", spec.spike_fn, SPIKE_FNS)
    check_choice("model.net.neuron.reset", spec.reset, RESETS)
    check_choice("model.net.neuron.surrogate", spec.surrogate, SURROGATES)
    if spec.spike_threshold <= 0:
        raise ConfigError(f"model.net.neuron.spike_threshold must be > 0, got {spec.spike_threshold}")
    if spec.leaky and (spec.tau_mem is None or spec.tau_mem <= 0):
        raise ConfigError(f"model.net.neuron.tau_mem must be > 0 for kind={spec.kind}, got {spec.tau_mem}")
    if spec.tau_syn is not None and spec.tau_syn <= 0:
        raise ConfigError(f"model.net.neuron.tau_syn must be > 0 (or null), got {spec.tau_syn}")
    if spec.adaptive and (spec.tau_adapt is None or spec.tau_adapt <= 0):
        raise ConfigError(f"model.net.neuron.tau_adapt must be > 0 for kind=alif, got {spec.tau_adapt}")
    if not spec.adaptive and spec.tau_adapt is not None:
        raise ConfigError(f"model.net.neuron.tau_adapt is only used by kind=alif (kind={spec.kind}); remove it")
    if spec.min_v_mem is not None and spec.min_v_mem >= spec.spike_threshold:
        raise ConfigError(
            f"model.net.neuron.min_v_mem={spec.min_v_mem} must be below spike_threshold={spec.spike_threshold}"
        )
    if spec.recurrent and spec.features is None:
        raise ConfigError(
            "model.net.neuron.recurrent=true needs the layer width, which this net does not pass to the "
            "backend (only the feed-forward SNN layers can be recurrent)"
        )
    if spec.features is not None and (isinstance(spec.features, bool) or int(spec.features) <= 0):
        raise ConfigError(f"features (the layer width) must be a positive integer, got {spec.features!r}")
    check_support(backend, spec)
    return spec
