"""The reference backend: sinabs's IAF and LIF layers (`backend=sinabs`)."""

from __future__ import annotations

from typing import Any

import sinabs.activation as sa
import sinabs.layers as sl
from torch import nn

from brainlab.errors import ConfigError
from brainlab.snn.factory import check_choice, register_spiking_type

register_spiking_type(sl.LIF)  # sinabs's IAF is a LIF without leak, so this covers both

SPIKE_FNS = {"multi": sa.MultiSpike, "single": sa.SingleSpike}
RESETS = {"subtract": sa.MembraneSubtract, "zero": sa.MembraneReset}
SURROGATES = {
    "single_exponential": sa.SingleExponential,
    "heaviside": sa.Heaviside,
    "periodic_exponential": sa.PeriodicExponential,
    "gaussian": sa.Gaussian,
}
KINDS = ("iaf", "lif")


def neuron(
    kind: str = "iaf",
    spike_threshold: float = 1.0,
    spike_fn: str = "multi",
    reset: str = "subtract",
    surrogate: str = "single_exponential",
    min_v_mem: float | None = None,
    tau_mem: float | None = None,
    tau_syn: float | None = None,
    **unknown: Any,
) -> nn.Module:
    """Build one sinabs spiking layer; arguments are the `model.net.neuron.*` knobs."""
    if unknown:
        raise ConfigError(
            f"model.net.neuron has unknown keys {sorted(unknown)} for backend=sinabs; "
            "known: kind, spike_threshold, spike_fn, reset, surrogate, min_v_mem, tau_mem, tau_syn"
        )
    check_choice("model.net.neuron.kind", kind, KINDS)
    check_choice("model.net.neuron.spike_fn", spike_fn, SPIKE_FNS)
    check_choice("model.net.neuron.reset", reset, RESETS)
    check_choice("model.net.neuron.surrogate", surrogate, SURROGATES)
    if spike_threshold <= 0:
        raise ConfigError(f"model.net.neuron.spike_threshold must be > 0, got {spike_threshold}")
    common = dict(
        spike_threshold=float(spike_threshold),
        spike_fn=SPIKE_FNS[spike_fn],
        reset_fn=RESETS[reset](),
        surrogate_grad_fn=SURROGATES[surrogate](),
        min_v_mem=min_v_mem,
        tau_syn=tau_syn,
    )
    if kind == "iaf":
        return sl.IAF(**common)
    if tau_mem is None or tau_mem <= 0:
        raise ConfigError(f"model.net.neuron.tau_mem must be > 0 for kind=lif, got {tau_mem}")
    return sl.LIF(tau_mem=float(tau_mem), **common)
