"""The reference backend: sinabs's IAF / LIF / ALIF layers and their recurrent versions (`backend=sinabs`)."""

from __future__ import annotations

from typing import Any

import sinabs.activation as sa
import sinabs.layers as sl
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.snn.plug import Backend, no_nir
from brainlab.snn.spec import NeuronSpec, parse_neuron, surrogate_kwargs

SPIKE_FNS = {"multi": sa.MultiSpike, "single": sa.SingleSpike}
RESETS = {"subtract": sa.MembraneSubtract, "zero": sa.MembraneReset}
SURROGATES = {
    "single_exponential": sa.SingleExponential,
    "heaviside": sa.Heaviside,
    "periodic_exponential": sa.PeriodicExponential,
    "gaussian": sa.Gaussian,
    "multi_gaussian": sa.MultiGaussian,
}


def make_surrogate(spec: NeuronSpec) -> Any:
    """sinabs's surrogate-gradient object for `model.net.neuron.surrogate` / `surrogate_args`."""
    cls = SURROGATES[spec.surrogate]
    try:
        return cls(**surrogate_kwargs(spec))
    except TypeError as err:
        fields = ", ".join(getattr(cls, "__dataclass_fields__", {})) or "none"
        raise ConfigError(
            f"model.net.neuron.surrogate_args {dict(spec.surrogate_args)} do not fit surrogate={spec.surrogate} "
            f"(its arguments: {fields})"
        ) from err


def recurrent_weight(features: int) -> nn.Linear:
    """The recurrent connection on the spikes: a bias-free Linear of the layer width (sinabs's rec_connect)."""
    return nn.Linear(features, features, bias=False)


def build(spec: NeuronSpec) -> nn.Module:
    """The sinabs layer for a validated spec (also the reference the other backends are tested against)."""
    common: dict[str, Any] = dict(
        spike_fn=SPIKE_FNS[spec.spike_fn],
        reset_fn=RESETS[spec.reset](),
        surrogate_grad_fn=make_surrogate(spec),
        min_v_mem=spec.min_v_mem,
    )
    if spec.recurrent:
        common["rec_connect"] = recurrent_weight(int(spec.features))
    if spec.kind == "alif":
        cls = sl.ALIFRecurrent if spec.recurrent else sl.ALIF
        layer = cls(tau_mem=float(spec.tau_mem), tau_adapt=float(spec.tau_adapt), adapt_scale=float(spec.adapt_scale),
                    spike_threshold=float(spec.spike_threshold), **common)
    elif spec.kind == "iaf":
        cls = sl.IAFRecurrent if spec.recurrent else sl.IAF
        layer = cls(spike_threshold=float(spec.spike_threshold), tau_syn=spec.tau_syn, **common)
    else:
        cls = sl.LIFRecurrent if spec.recurrent else sl.LIF
        layer = cls(tau_mem=float(spec.tau_mem), spike_threshold=float(spec.spike_threshold), tau_syn=spec.tau_syn,
                    **common)
    return set_train_tau(layer, spec.train_tau)


def set_train_tau(layer: nn.Module, train: bool) -> nn.Module:
    """Time constants are parameters in sinabs (always trained there); learnable here only with train_tau."""
    for name in ("tau_mem", "tau_syn", "tau_adapt"):
        param = getattr(layer, name, None)
        if isinstance(param, nn.Parameter):
            param.requires_grad_(train)
    return layer


def neuron(kind: str = "iaf", **params: Any) -> nn.Module:
    """Build one sinabs spiking layer; arguments are the `model.net.neuron.*` knobs."""
    return build(parse_neuron("sinabs", {"kind": kind, **params}))


def to_sinabs(layer: nn.Module) -> nn.Module:
    """NIR mapping: plain IAF/LIF/ExpLeak as they are, other sinabs.LIF subclasses (recurrent ones included) copied
    as plain IAF/LIF (IAFRecurrent/LIFRecurrent); ALIF refused (NIR's neurons have a fixed threshold)."""
    if type(layer) in (sl.IAF, sl.LIF, sl.ExpLeak):
        return layer
    if isinstance(layer, sl.LIF):
        return plain_copy(layer)
    raise no_nir(layer)


def plain_copy(layer: sl.LIF) -> sl.LIF:
    """A plain sinabs.IAF/LIF (or IAFRecurrent/LIFRecurrent, with a copy of the recurrent weight) with the arguments
    and trained time constants of a sinabs.LIF subclass; a new layer (sinabs's recurrent layers cannot be
    deep-copied)."""
    common: dict[str, Any] = dict(
        spike_threshold=layer.spike_threshold.detach().clone(),
        spike_fn=layer.spike_fn,
        reset_fn=layer.reset_fn,
        surrogate_grad_fn=layer.surrogate_grad_fn,
        min_v_mem=None if layer.min_v_mem is None else float(layer.min_v_mem),
    )
    tau_syn = getattr(layer, "tau_syn_calculated", None)
    tau_syn = None if tau_syn is None else tau_syn.detach().clone()
    rec = getattr(layer, "rec_connect", None)
    if isinstance(rec, nn.Linear):
        common["rec_connect"] = nn.Linear(rec.in_features, rec.out_features, bias=rec.bias is not None)
        common["rec_connect"].load_state_dict(rec.state_dict())
    elif rec is not None:
        raise no_nir(layer)
    # an integrator: sinabs's IAF, or an LIF subclass without a membrane time constant (sinabs-exodus's IAF)
    if isinstance(layer, sl.IAF | sl.IAFRecurrent) or getattr(layer, "tau_mem", 0.0) is None:
        return (sl.IAFRecurrent if rec is not None else sl.IAF)(tau_syn=tau_syn, **common)
    return (sl.LIFRecurrent if rec is not None else sl.LIF)(
        tau_mem=layer.tau_mem_calculated.detach().clone(), tau_syn=tau_syn, norm_input=layer.norm_input, **common)


# sinabs's IAF, ExpLeak and the recurrent layers subclass LIF; ALIFRecurrent subclasses ALIF
BACKEND = Backend("sinabs", layers=(sl.LIF, sl.ALIF), to_sinabs=to_sinabs)
