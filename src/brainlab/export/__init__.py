"""`python -m brainlab.export ckpt_path=<ckpt> [format=nir] [output=<file>]`: ship a trained SNN.

The checkpoint's run config rebuilds the phase; each spiking layer is converted to a plain sinabs IAF/LIF layer
with the trained parameters by the mapping of the backend that made it (`Backend.to_sinabs`, found by the layer's
class; e.g. backend=fastsnn's single-spike layers become IAF/LIF with a `SilenceAfterSpike` reset), fastsnn's
leaky readout becomes `ExpLeak`, each LIF's input scaling is folded into the layer before it, and NIR is written
(read by Lava/Loihi, SpiNNaker2, Speck and several simulators). The exported graph takes the net's flattened
input features per time step. Recurrent and adaptive (ALIF) neurons have no NIR node and are refused.

NIR 1.0 neuron nodes carry no reset, spike function or membrane floor, and `sinabs.from_nir` fills in its own
(LIF: subtract reset, multi-spike; IF: subtract reset, `min_v_mem = -threshold`). Each neuron node therefore
carries the layer's discrete-time semantics in its `metadata` (kept in the file by `nir.write` / `nir.read`),
and `read_nir(path, batch_size)` is `sinabs.from_nir` followed by restoring them: it gives exactly the trained
spikes. Plain `sinabs.from_nir` still reads every file, but without that metadata a single-spike (fastsnn)
neuron fires again after its first spike, an IAF's membrane is clipped at `-threshold`, and a single-spike or
zero-reset layer gets multi-spike / subtract semantics; the CLI names the nodes where that changes anything.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path
from typing import Any

import nir
import nirtorch
import numpy as np
import sinabs
import sinabs.activation as sa
import torch
from hydra.utils import instantiate
from nirtorch.utils import sanitize_name
from omegaconf import OmegaConf
from torch import nn

from brainlab.core.errors import BrainlabError, ConfigError, DataError
from brainlab.eval import find_run_config
from brainlab.nets.readout_snn import LeakyReadout
from brainlab.snn.factory import is_spiking
from brainlab.snn.fastsnn import SILENT, SilenceAfterSpike, steps_tau
from brainlab.snn.plug import backend_of, no_nir

__all__ = ["SILENT", "SilenceAfterSpike", "export_nir", "nir_graph", "read_nir", "to_sinabs"]

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
        if isinstance(child, LeakyReadout):
            setattr(module, name, sinabs_readout(child))
        elif is_spiking(child) or isinstance(child, sinabs.layers.StatefulLayer):
            setattr(module, name, sinabs_layer(child))
        else:
            to_sinabs_inplace(child)


def sinabs_layer(layer: nn.Module) -> nn.Module:
    """The plain sinabs IAF/LIF equivalent of one spiking layer, by the mapping of the backend that made it."""
    plug = backend_of(layer)
    if plug is None or plug.to_sinabs is None:
        raise no_nir(layer)
    return plug.to_sinabs(layer)


def sinabs_readout(readout: LeakyReadout) -> sinabs.layers.ExpLeak:
    """fastsnn's leaky readout `V_t = beta V_(t-1) + I_t` as sinabs's `ExpLeak(norm_input=False)` (what
    sinabs's NIR import builds from a `nir.LI` node with `r = 1`)."""
    return sinabs.layers.ExpLeak(tau_mem=steps_tau(readout.beta), norm_input=False)


def fold_input_scaling(module: nn.Module) -> None:
    """Move each LIF's input normalisation `(1 - alpha)` into the Linear/Conv before it (exact, in place).

    sinabs's LIF scales its input by `1 - alpha` (`norm_input`); sinabs's NIR import ignores the NIR input
    resistance `r` and reads every LIF back without that scaling. Folding the factor into the preceding affine
    layer gives a network with the same dynamics whose NIR (with `r = 1 / (1 - alpha)`) reads back exactly.
    """
    children = list(module.children())
    for before, layer in zip(children, children[1:], strict=False):
        affine = isinstance(before, nn.Linear | nn.Conv1d | nn.Conv2d)
        if affine and type(layer) in (sinabs.layers.LIF, sinabs.layers.ExpLeak) and layer.norm_input:
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
    """NIR node of one sinabs module; LIF nodes carry their true input resistance and a synaptic current.

    Neuron nodes carry `neuron_metadata`; a leaky readout (`ExpLeak`) is a `nir.LI` with `r = 1`, the only
    value sinabs's import accepts. A reader that follows NIR's continuous-time equation scales that readout by
    `1 - alpha` (the same factor for every unit when the readout has one tau, as fastsnn's has), which leaves
    its time-summed argmax unchanged; the node's metadata states the discrete equation.
    """
    if type(module) is sinabs.layers.ExpLeak:
        tau = array(module.tau_mem_calculated)
        node = nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau))
        node.metadata = readout_metadata(module)
        return node
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


SOURCE = "brainlab (sinabs layers)"
DT = "1 time step; exact exponential decay with input held over the step"
SPIKE_FNS = {"SingleSpike": sa.SingleSpike, "MultiSpike": sa.MultiSpike}


def neuron_metadata(module: sinabs.layers.LIF) -> dict[str, str]:
    """The discrete-time semantics NIR's neuron nodes do not carry; `read_nir` restores them.

    Keys: `reset` (`MembraneSubtract`, `MembraneReset` or `first_spike_only`: after its first spike the
    neuron is held at `reset_value` = -inf and never fires again, backend=fastsnn), `reset_value`,
    `subtract_value` (`threshold` or a number), `spike_fn` (`SingleSpike`, `MultiSpike` or `MaxSpike` with
    `max_spikes_per_step`), `min_v_mem` (`none` or the membrane floor).
    """
    reset, spike_fn = module.reset_fn, module.spike_fn
    meta = {"source": SOURCE, "dt": DT, "reset": type(reset).__name__}
    if isinstance(reset, SilenceAfterSpike):
        meta.update(reset="first_spike_only", reset_value=str(float(reset.reset_value)),
                    note="spikes once at the first threshold crossing (V >= threshold), then silent")
    elif isinstance(reset, sa.MembraneReset):
        meta["reset_value"] = str(float(reset.reset_value))
    elif isinstance(reset, sa.MembraneSubtract):
        value = reset.subtract_value
        meta["subtract_value"] = "threshold" if value is None else str(float(value))
    if isinstance(spike_fn, sa.MaxSpike):
        meta.update(spike_fn="MaxSpike", max_spikes_per_step=str(int(spike_fn.max_num_spikes_per_bin)))
    else:
        meta["spike_fn"] = getattr(spike_fn, "__name__", type(spike_fn).__name__)
    meta["min_v_mem"] = "none" if module.min_v_mem is None else str(float(module.min_v_mem))
    return meta


def readout_metadata(module: sinabs.layers.ExpLeak) -> dict[str, str]:
    """What an `ExpLeak` readout node means: the membrane is the output, the input is not scaled."""
    return {
        "source": SOURCE, "dt": DT, "output": "membrane potential (non-spiking leaky readout)",
        "input": "not scaled: V_t = exp(-1/tau) V_(t-1) + I_t (sinabs ExpLeak norm_input=False; r = 1 as sinabs reads)",
        "min_v_mem": "none" if module.min_v_mem is None else str(float(module.min_v_mem)),
    }


def restore_semantics(module: nn.Module, meta: dict[str, Any], name: str = "") -> None:
    """Set a sinabs neuron's reset, spike function and membrane floor from its brainlab node metadata."""
    if not isinstance(module, sinabs.layers.LIF) or not str(meta.get("source", "")).startswith("brainlab"):
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


def read_nir(path: str | Path, batch_size: int, num_timesteps: int | None = None) -> nn.Module:
    """`sinabs.from_nir` of a brainlab NIR file, with each neuron's reset, spike function and membrane floor
    restored from the node metadata: the exported net's exact spikes (input `(batch * time, features)`)."""
    graph = nir.read(str(path))
    model = sinabs.from_nir(graph, batch_size=batch_size, num_timesteps=num_timesteps)
    restore_graph(model, graph)
    return model


def restore_graph(model: nn.Module, graph: nir.NIRGraph) -> None:
    children = dict(model.named_children())
    for name, node in graph.nodes.items():
        module = children.get(sanitize_name(name))
        if isinstance(node, nir.NIRGraph) and module is not None:
            restore_graph(module, node)
        elif module is not None:
            restore_semantics(module, getattr(node, "metadata", None) or {}, name)


def plain_import_differences(path: str | Path) -> list[str]:
    """Nodes of a brainlab NIR file that plain `sinabs.from_nir` reads with other semantics than `read_nir`."""
    graph = nir.read(str(path))
    plain = dict(sinabs.from_nir(graph, batch_size=1).named_modules())
    exact = dict(read_nir(path, batch_size=1).named_modules())
    keys = ("reset_fn", "spike_fn", "min_v_mem")
    return [name for name, module in exact.items() if isinstance(module, sinabs.layers.LIF)
            and any(comparable(getattr(module, k)) != comparable(getattr(plain[name], k)) for k in keys)]


def comparable(value: Any) -> Any:
    """Numbers, arrays and tensors as a tuple of floats (sinabs keeps an IF's floor as the threshold array)."""
    if isinstance(value, torch.Tensor | np.ndarray | float | int):
        return tuple(np.atleast_1d(torch.as_tensor(value).detach().cpu().double().numpy()).ravel())
    return value


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
    target = Path(output) if output else Path(ckpt_path).with_suffix(".nir")
    if target.exists():
        raise ConfigError(f"{target} already exists; nothing was overwritten: pass output=<new file>")
    graph = nir_graph(body, math.prod(shape), steps)
    target.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(target), graph)
    return target


def nir_graph(body: nn.Module, features: int, steps: int = 1) -> nir.NIRGraph:
    """The NIR graph of a layer stack over `features` inputs per step (converted to sinabs first, not in place)."""
    model = to_sinabs(body)
    for module in model.modules():
        if hasattr(module, "reset_states"):
            module.reset_states()
    fold_input_scaling(model)
    sample = torch.zeros(1, steps, features)
    return with_1d_parameters(
        nirtorch.extract_nir_graph(model, neuron_node, sample, model_name="model", ignore_dims=[0])
    )


def with_1d_parameters(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Neuron parameters as 1-D arrays: sinabs's NIR import cannot read scalar LIF parameters back."""
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF | nir.CubaLIF | nir.IF | nir.LI):
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
    changed = plain_import_differences(path)
    if changed:
        print(f"read it back with brainlab.export.read_nir(path, batch_size): plain sinabs.from_nir ignores the "
              f"reset / spike function / membrane floor kept in the metadata of node(s) {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
