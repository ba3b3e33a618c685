"""The reference backend: sinabs's IAF and LIF layers (`backend=sinabs`)."""

from __future__ import annotations

from typing import Any

import sinabs.activation as sa
import sinabs.layers as sl
from torch import nn

from brainlab.snn.factory import register_spiking_type
from brainlab.snn.spec import NeuronSpec, parse_neuron

register_spiking_type(sl.LIF)  # sinabs's IAF is a LIF without leak, so this covers both

SPIKE_FNS = {"multi": sa.MultiSpike, "single": sa.SingleSpike}
RESETS = {"subtract": sa.MembraneSubtract, "zero": sa.MembraneReset}
SURROGATES = {
    "single_exponential": sa.SingleExponential,
    "heaviside": sa.Heaviside,
    "periodic_exponential": sa.PeriodicExponential,
    "gaussian": sa.Gaussian,
}


def build(spec: NeuronSpec) -> nn.Module:
    """The sinabs layer for a validated spec (also the reference the other backends are tested against)."""
    common = dict(
        spike_threshold=float(spec.spike_threshold),
        spike_fn=SPIKE_FNS[spec.spike_fn],
        reset_fn=RESETS[spec.reset](),
        surrogate_grad_fn=SURROGATES[spec.surrogate](),
        min_v_mem=spec.min_v_mem,
        tau_syn=spec.tau_syn,
    )
    if spec.kind == "iaf":
        return sl.IAF(**common)
    return sl.LIF(tau_mem=float(spec.tau_mem), **common)


def neuron(kind: str = "iaf", **params: Any) -> nn.Module:
    """Build one sinabs spiking layer; arguments are the `model.net.neuron.*` knobs."""
    return build(parse_neuron("sinabs", {"kind": kind, **params}))
