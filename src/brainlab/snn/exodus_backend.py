"""`backend=exodus`: the real sinabs-exodus CUDA layers (imported lazily, only when this backend is built).

sinabs-exodus compiles a CUDA extension at install time, so it exists only on GPU machines:
`pip install sinabs-exodus` (or `git clone https://github.com/synsense/sinabs-exodus && pip install .`
inside it, with `nvcc` matching `torch.version.cuda`; not in editable mode). Elsewhere building a layer
raises one ConfigError carrying the real import error.

Mapping of the `model.net.neuron.*` knobs onto `sinabs.exodus.layers.IAF` / `LIF` (both subclass sinabs's
LIF and take the same arguments): kind iaf/lif, spike_threshold, spike_fn multi/single (MultiSpike /
SingleSpike), reset=subtract only (exodus's kernels implement MembraneSubtract alone), surrogate +
surrogate_args (any sinabs surrogate: exodus evaluates it in torch), min_v_mem (below the threshold),
tau_mem (LIF, norm_input=True as sinabs), tau_syn (exodus's `decay_early=True` = sinabs's synapse), train_tau
(tau parameters' requires_grad; exodus computes the decay gradient in CUDA). Not expressible, refused by name
before any import: kind=alif, recurrent=true, reset=zero (`BACKEND.support`).
"""

from __future__ import annotations

from typing import Any

import sinabs.layers as sl
import torch
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.snn import sinabs_backend
from brainlab.snn.plug import Backend, Support, no_nir
from brainlab.snn.sinabs_backend import RESETS, SPIKE_FNS, make_surrogate, set_train_tau
from brainlab.snn.spec import parse_neuron

INSTALL = (
    "install it on a CUDA machine with `pip install sinabs-exodus` (or `git clone "
    "https://github.com/synsense/sinabs-exodus && cd sinabs-exodus && pip install .`, needs nvcc matching "
    "torch.version.cuda), or choose backend=fused"
)


def load_layers() -> Any:
    """`sinabs.exodus.layers`, or a ConfigError saying how to install it (with the real import error)."""
    try:
        import sinabs.exodus.layers as layers
    except Exception as err:  # ImportError, or an OSError/RuntimeError from a broken CUDA build
        raise ConfigError(
            f"backend=exodus needs the sinabs-exodus package, which failed to import "
            f"({type(err).__name__}: {err}); {INSTALL}"
        ) from err
    return layers


class ExodusNeuron(nn.Module):
    """Holds one sinabs-exodus IAF/LIF layer; refuses CPU input with a clear message."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def reset_states(self) -> None:
        self.layer.reset_states()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cuda:
            raise ConfigError("backend=exodus runs on CUDA tensors only: use trainer=gpu, or backend=fused on CPU")
        return self.layer(x)


def neuron(kind: str = "iaf", **params: Any) -> nn.Module:
    """`backend=exodus` factory: the knobs of `backend=sinabs` that exodus's kernels implement."""
    spec = parse_neuron("exodus", {"kind": kind, **params})
    layers = load_layers()
    common: dict[str, Any] = dict(
        spike_threshold=float(spec.spike_threshold),
        spike_fn=SPIKE_FNS[spec.spike_fn],
        reset_fn=RESETS[spec.reset](),
        surrogate_grad_fn=make_surrogate(spec),
        min_v_mem=spec.min_v_mem,
    )
    if spec.tau_syn is not None:
        common.update(tau_syn=float(spec.tau_syn), decay_early=True)
    try:
        if spec.kind == "iaf":
            layer = layers.IAF(**common)
        else:
            layer = layers.LIF(tau_mem=float(spec.tau_mem), norm_input=True, **common)
    except TypeError as err:  # sinabs-exodus < 1.1 has no synaptic current
        raise ConfigError(
            f"model.net.neuron.tau_syn needs sinabs-exodus >= 1.1 ({err}); upgrade with "
            "`pip install -U sinabs-exodus` or set tau_syn to null"
        ) from err
    return ExodusNeuron(set_train_tau(layer, spec.train_tau))


def to_sinabs(layer: nn.Module) -> nn.Module:
    """NIR mapping: the held sinabs-exodus layer (a sinabs.LIF subclass) as a plain sinabs IAF/LIF."""
    inner = getattr(layer, "layer", None)
    if isinstance(inner, sl.LIF):
        return sinabs_backend.to_sinabs(inner)
    raise no_nir(layer)


BACKEND = Backend(
    "exodus", support=Support(kinds=("iaf", "lif"), resets=("subtract",), recurrent=False), layers=(ExodusNeuron,),
    to_sinabs=to_sinabs, requires=load_layers, devices=("cuda",),
)
