"""The neuron factory interface: a factory maps `(batch, time, *features)` input current to spikes.

A backend is a callable `neuron(kind="iaf" | "lif", **params) -> nn.Module`, configured in
`conf/backend/<name>.yaml` as a `_partial_` target; its module declares the rest (`plug.Backend`). Nets ask the
factory for layers and never import a backend. Every module a factory returns has `reset_states()` and keeps its
state between calls until reset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from torch import nn

from brainlab.core.wrappers import unwrapped_name

_SPIKING_TYPES: list[type[nn.Module]] = []


class NeuronFactory(Protocol):
    """What every backend provides."""

    def __call__(self, kind: str = "iaf", **params: object) -> nn.Module: ...


def register_spiking_type(cls: type[nn.Module]) -> type[nn.Module]:
    """Mark a backend's layer class as spiking, so callbacks (firing rates, SynOps) can find it."""
    if cls not in _SPIKING_TYPES:
        _SPIKING_TYPES.append(cls)
    return cls


def is_spiking(module: nn.Module) -> bool:
    """True for layers made by a backend factory."""
    return isinstance(module, tuple(_SPIKING_TYPES)) if _SPIKING_TYPES else False


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The named spiking layers of `model`, outermost first."""
    return [(unwrapped_name(name), m) for name, m in model.named_modules() if is_spiking(m)]


def reset_states(modules: Iterable[nn.Module]) -> int:
    """Reset every stateful layer among `modules`; returns how many were reset."""
    count = 0
    for module in modules:
        reset = getattr(module, "reset_states", None)
        if callable(reset):
            reset()
            count += 1
    return count
