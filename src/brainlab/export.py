"""`python -m brainlab.export ckpt_path=<ckpt> [format=nir] [output=<file>]`: ship a trained SNN.

The checkpoint's run config rebuilds the phase; its spiking layers are converted to plain sinabs IAF/LIF layers
with the trained parameters (fused layers from their spec, sinabs-exodus layers, which subclass sinabs's, from
their arguments), each LIF's input scaling is folded into the layer before it, and NIR is written
(read by Lava/Loihi, SpiNNaker2, Speck and several simulators). The exported graph takes
the net's flattened input features per time step.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import nir
import nirtorch
import numpy as np
import sinabs
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from brainlab.errors import BrainlabError, ConfigError
from brainlab.eval import find_run_config
from brainlab.snn import sinabs_backend
from brainlab.snn.factory import is_spiking

FORMATS = ("nir",)


def to_sinabs(net: nn.Module) -> nn.Module:
    """A copy of `net` whose spiking layers are plain sinabs IAF/LIF layers with the same (trained) parameters."""
    for layer in net.modules():  # refuse before copying: sinabs's recurrent layers cannot even be deep-copied
        if is_spiking(layer) or isinstance(layer, sinabs.layers.StatefulLayer):
            sinabs_layer(layer)
    net = copy.deepcopy(net)
    to_sinabs_inplace(net)
    return net


def to_sinabs_inplace(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if is_spiking(child) or isinstance(child, sinabs.layers.StatefulLayer):
            setattr(module, name, sinabs_layer(child))
        else:
            to_sinabs_inplace(child)


def sinabs_layer(layer: nn.Module) -> nn.Module:
    """The plain sinabs IAF/LIF equivalent of one backend layer (sinabs, fused, or sinabs-exodus)."""
    inner = getattr(layer, "layer", None)
    if isinstance(inner, sinabs.layers.LIF):  # backend=exodus wraps a sinabs-exodus layer (a sinabs.LIF subclass)
        layer = inner
    if type(layer) in (sinabs.layers.IAF, sinabs.layers.LIF):
        return layer
    if isinstance(layer, sinabs.layers.LIF) and not list(layer.children()):  # recurrent layers hold a Linear
        return plain_copy(layer)
    spec = getattr(layer, "spec", None)
    plain = getattr(spec, "kind", None) in ("iaf", "lif") and not getattr(spec, "recurrent", False)
    if spec is not None and plain and hasattr(layer, "tau_mem"):
        out = sinabs_backend.build(spec)
        with torch.no_grad():
            if layer.tau_mem is not None:
                out.tau_mem.data = layer.tau_mem.detach().clone()
            if getattr(layer, "tau_syn", None) is not None:
                out.tau_syn.data = layer.tau_syn.detach().clone()
        return out
    raise ConfigError(
        f"{type(layer).__name__} layers have no NIR equivalent that sinabs can write and read back (the single-"
        "spike layer of backend=fastsnn, adaptive or recurrent neurons): export a model with plain IAF/LIF neurons "
        "trained with backend=sinabs, fused or exodus"
    )


def plain_copy(layer: sinabs.layers.LIF) -> sinabs.layers.LIF:
    """A plain sinabs.IAF/LIF with the arguments and trained time constants of a sinabs.LIF subclass."""
    common = dict(
        spike_threshold=layer.spike_threshold.detach().clone(),
        spike_fn=layer.spike_fn,
        reset_fn=layer.reset_fn,
        surrogate_grad_fn=layer.surrogate_grad_fn,
        min_v_mem=None if layer.min_v_mem is None else float(layer.min_v_mem),
    )
    tau_syn = getattr(layer, "tau_syn_calculated", None)
    if isinstance(layer, sinabs.layers.IAF):
        out = sinabs.layers.IAF(tau_syn=None if tau_syn is None else tau_syn.detach().clone(), **common)
    else:
        out = sinabs.layers.LIF(
            tau_mem=layer.tau_mem_calculated.detach().clone(),
            tau_syn=None if tau_syn is None else tau_syn.detach().clone(),
            norm_input=layer.norm_input,
            **common,
        )
    return out


def fold_input_scaling(module: nn.Module) -> None:
    """Move each LIF's input normalisation `(1 - alpha)` into the Linear/Conv before it (exact, in place).

    sinabs's LIF scales its input by `1 - alpha` (`norm_input`); sinabs's NIR import ignores the NIR input
    resistance `r` and reads every LIF back without that scaling. Folding the factor into the preceding affine
    layer gives a network with the same dynamics whose NIR (with `r = 1 / (1 - alpha)`) reads back exactly.
    """
    children = list(module.children())
    for before, layer in zip(children, children[1:], strict=False):
        affine = isinstance(before, nn.Linear | nn.Conv1d | nn.Conv2d)
        if affine and type(layer) is sinabs.layers.LIF and layer.norm_input:
            scale = (1 - layer.alpha_mem_calculated.detach()).reshape(-1)
            shape = (-1,) + (1,) * (before.weight.dim() - 1)
            with torch.no_grad():
                before.weight.mul_(scale.reshape(shape) if scale.numel() > 1 else scale)
                if before.bias is not None:
                    before.bias.mul_(scale)
            layer.norm_input = False
    for child in children:
        fold_input_scaling(child)


def neuron_node(module: nn.Module) -> nir.NIRNode:
    """NIR node of one sinabs module; LIF nodes carry their true input resistance and a synaptic current."""
    if type(module) is sinabs.layers.LIF:
        alpha = array(module.alpha_mem_calculated)
        tau = array(module.tau_mem_calculated)
        r = np.ones_like(tau) if module.norm_input else 1 / (1 - alpha)
        threshold = array(module.spike_threshold)
        if module.tau_syn is not None:
            node = nir.CubaLIF(
                tau_syn=array(module.tau_syn_calculated), tau_mem=tau, r=r, v_leak=np.zeros_like(tau),
                v_threshold=threshold, w_in=1 / (1 - array(module.alpha_syn_calculated)),
            )
        else:
            node = nir.LIF(tau=tau, r=r, v_leak=np.zeros_like(tau), v_threshold=threshold)
    else:
        node = sinabs.nir._extract_sinabs_module(module)
    if isinstance(module, sinabs.layers.LIF):
        node.metadata = neuron_metadata(module)
    return node


def array(value: torch.Tensor) -> np.ndarray:
    """A float32 array of at least one dimension (sinabs's NIR import cannot read scalars back)."""
    return np.atleast_1d(value.detach().cpu().numpy().astype(np.float32))


def neuron_metadata(module: sinabs.layers.LIF) -> dict[str, str]:
    """The discrete-time semantics NIR's neuron nodes do not carry, for readers that want them exactly."""
    return {
        "source": "brainlab (sinabs layers)",
        "dt": "1 time step; exact exponential decay with input held over the step",
        "reset": type(module.reset_fn).__name__,
        "spike_fn": getattr(module.spike_fn, "__name__", type(module.spike_fn).__name__),
        "min_v_mem": "none" if module.min_v_mem is None else str(float(module.min_v_mem)),
    }


def load_phase(ckpt_path: str | Path) -> tuple[nn.Module, tuple[int, ...], int]:
    """The trained phase from a checkpoint and its run's config; returns (phase, input shape, time bins)."""
    cfg = OmegaConf.load(find_run_config(ckpt_path))
    OmegaConf.update(cfg, "paths.output_dir", str(Path(ckpt_path).resolve().parent), force_add=True)
    phase = instantiate(cfg.model, _recursive_=False)
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    phase.load_state_dict(state)
    phase.eval()
    shape = tuple(int(d) for d in cfg.data.get("input_shape", ()))
    return phase, shape, int(cfg.data.get("n_time_bins", 1))


def export_nir(ckpt_path: str | Path, output: str | Path | None = None) -> Path:
    """Write the checkpoint's SNN as a NIR graph (HDF5); returns the file written (never overwrites)."""
    phase, shape, steps = load_phase(ckpt_path)
    net = getattr(phase, "net", phase)
    body = getattr(net, "layers", None)
    if body is None or not shape:
        raise ConfigError(
            f"NIR export supports nets with a `layers` stack over flat features; got {type(net).__name__}"
        )
    model = to_sinabs(body)
    for module in model.modules():
        if hasattr(module, "reset_states"):
            module.reset_states()
    sample = torch.zeros(1, steps, math.prod(shape))
    fold_input_scaling(model)
    graph = with_1d_parameters(
        nirtorch.extract_nir_graph(model, neuron_node, sample, model_name="model", ignore_dims=[0])
    )
    target = Path(output) if output else Path(ckpt_path).with_suffix(".nir")
    if target.exists():
        raise ConfigError(f"{target} already exists; nothing was overwritten: pass output=<new file>")
    target.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(target), graph)
    return target


def with_1d_parameters(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Neuron parameters as 1-D arrays: sinabs's NIR import cannot read scalar LIF parameters back."""
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF | nir.CubaLIF | nir.IF):
            for key, value in vars(node).items():
                if isinstance(value, torch.Tensor):
                    value = value.detach().cpu().numpy()
                if isinstance(value, np.ndarray | np.generic | float):
                    setattr(node, key, np.atleast_1d(np.asarray(value, dtype=np.float32)))
    return graph


def parse_args(argv: list[str]) -> dict[str, str]:
    args = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in {"ckpt_path", "format", "output"}:
            raise ConfigError(f"unexpected argument {item!r}: use ckpt_path=<ckpt> [format=nir] [output=<file>]")
        args[key] = value
    if "ckpt_path" not in args:
        raise ConfigError("ckpt_path=<checkpoint> is required")
    if args.get("format", "nir") not in FORMATS:
        raise ConfigError(f"format={args['format']!r} is not supported; choose one of: {', '.join(FORMATS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        path = export_nir(args["ckpt_path"], args.get("output"))
    except BrainlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
