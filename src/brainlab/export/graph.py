"""An export view as a NIR graph, traced by `nirtorch.torch_to_nir` (nirtorch's current API).

Each leaf maps to one node (`MODULE_MAP`); a `Residual` sum becomes two edges into the next node (NIR sums a
node's inputs); a recurrent sinabs layer becomes a subgraph `input -> neuron -> output` with the recurrent weight
as an edge `neuron -> w_rec -> neuron`. `set_types` then gives every node its shape at one time step (NIR's own
type inference knows neither pools nor subgraphs) and broadcasts neuron parameters to their layer's shape.
Neuron nodes carry the layer's discrete-time semantics in their `metadata` (see `neuron_metadata`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import Any

import nir
import nirtorch
import numpy as np
import sinabs.activation as sa
import sinabs.layers as sl
import torch
from nir.ir.utils import calc_flatten_output, calculate_conv_output
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.export.convert import GlobalAvgPool
from brainlab.snn.fastsnn import SilenceAfterSpike

SOURCE = "brainlab (sinabs layers)"
DT = "1 time step; exact exponential decay with input held over the step"
NEURONS = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI)
IAF = (sl.IAF, sl.IAFRecurrent)  # sinabs's IAFRecurrent subclasses LIFRecurrent, not IAF


def array(value: torch.Tensor | float) -> np.ndarray:
    """A float32 array of at least one dimension (sinabs's NIR import cannot read scalars back)."""
    value = torch.as_tensor(value)
    return np.atleast_1d(value.detach().cpu().numpy().astype(np.float32))


def neuron_node(module: nn.Module) -> nir.NIRNode:
    """NIR node of one sinabs neuron; LIF nodes carry their true input resistance and a synaptic current.

    A leaky readout (`ExpLeak`) is a `nir.LI` with `r = 1`, the only value sinabs's import accepts. A reader that
    follows NIR's continuous-time equation scales that readout by `1 - alpha` (the same factor for every unit
    when the readout has one tau, as fastsnn's has), which leaves its time-summed argmax unchanged; the node's
    metadata states the discrete equation.
    """
    if isinstance(module, sl.ExpLeak):
        tau = array(module.tau_mem_calculated)
        node = nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau))
        node.metadata = readout_metadata(module)
        return node
    threshold = array(module.spike_threshold)
    tau_syn = getattr(module, "tau_syn_calculated", None)
    if isinstance(module, IAF) and tau_syn is None:
        node = nir.IF(r=np.ones_like(threshold), v_threshold=threshold)
    else:
        alpha = array(module.alpha_mem_calculated) if not isinstance(module, IAF) else np.ones(1, np.float32)
        tau = array(module.tau_mem_calculated) if not isinstance(module, IAF) else np.full(1, np.inf, np.float32)
        if isinstance(module, IAF) or module.norm_input:
            r = np.ones_like(tau)  # NIR's own equation: V += (1 - alpha) r I
        else:
            r = 1 / (1 - alpha)
        if tau_syn is not None:
            node = nir.CubaLIF(tau_syn=array(tau_syn), tau_mem=tau, r=r, v_leak=np.zeros_like(tau),
                               v_threshold=threshold, w_in=1 / (1 - array(module.alpha_syn_calculated)))
        else:
            node = nir.LIF(tau=tau, r=r, v_leak=np.zeros_like(tau), v_threshold=threshold)
    node.metadata = neuron_metadata(module)
    return node


def neuron_metadata(module: sl.LIF) -> dict[str, str]:
    """The discrete-time semantics NIR's neuron nodes do not carry; `read_nir` restores them.

    Keys: `reset` (`MembraneSubtract`, `MembraneReset` or `first_spike_only`: after its first spike the
    neuron is held at `reset_value` = -inf and never fires again, backend=fastsnn), `reset_value`,
    `subtract_value` (`threshold` or a number), `spike_fn` (`SingleSpike`, `MultiSpike` or `MaxSpike` with
    `max_spikes_per_step`), `min_v_mem` (`none` or the membrane floor); `neuron` (`IAF`: no leak; a CubaLIF node
    of an IAF layer has `tau_mem = inf`), `norm_input`.
    """
    reset, spike_fn = module.reset_fn, module.spike_fn
    meta = {"source": SOURCE, "dt": DT, "reset": type(reset).__name__,
            "neuron": "IAF" if isinstance(module, IAF) else "LIF"}
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


def readout_metadata(module: sl.ExpLeak) -> dict[str, str]:
    """What an `ExpLeak` readout node means: the membrane is the output, the input is not scaled."""
    return {
        "source": SOURCE, "dt": DT, "output": "membrane potential (non-spiking leaky readout)",
        "input": "not scaled: V_t = exp(-1/tau) V_(t-1) + I_t (sinabs ExpLeak norm_input=False; r = 1 as sinabs reads)",
        "min_v_mem": "none" if module.min_v_mem is None else str(float(module.min_v_mem)),
    }


def recurrent_node(module: sl.LIFRecurrent) -> nir.NIRGraph:
    """A recurrent layer as the subgraph NIR (and snnTorch) use: `input -> neuron -> output`, `neuron -> w_rec ->
    neuron`; the neuron sums its input and the recurrent current of the previous step."""
    weight = module.rec_connect.weight.detach().cpu().numpy().astype(np.float32)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([weight.shape[0]])), "neuron": neuron_node(module),
               "w_rec": nir.Linear(weight=weight), "output": nir.Output(output_type=np.array([weight.shape[0]]))},
        edges=[("input", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "output")],
        metadata={"source": SOURCE, "recurrent": "neuron input at step t: input_t + w_rec @ spikes_(t-1)"},
    )


def affine(module: nn.Linear) -> nir.Affine:
    weight = module.weight.detach().cpu().numpy()
    bias = np.zeros(weight.shape[0], weight.dtype) if module.bias is None else module.bias.detach().cpu().numpy()
    return nir.Affine(weight=weight, bias=bias)


def conv2d(module: nn.Conv2d) -> nir.Conv2d:
    weight = module.weight.detach().cpu().numpy()
    bias = np.zeros(weight.shape[0], weight.dtype) if module.bias is None else module.bias.detach().cpu().numpy()
    return nir.Conv2d(input_shape=None, weight=weight, stride=pair(module.stride), padding=pair(module.padding),
                      dilation=pair(module.dilation), groups=module.groups, bias=bias)


def pair(value: int | Sequence[int] | None) -> np.ndarray:
    if value is None:
        return None  # type: ignore[return-value]
    return np.array(tuple(value) if isinstance(value, Sequence) else (value, value))


def avg_pool(module: nn.AvgPool2d) -> nir.AvgPool2d:
    if module.ceil_mode or (not module.count_include_pad and module.padding):
        raise ConfigError(f"{module}: only floor-mode average pooling that counts padding has a NIR node")
    stride = module.kernel_size if module.stride is None else module.stride
    return nir.AvgPool2d(kernel_size=pair(module.kernel_size), stride=pair(stride), padding=pair(module.padding))


def sum_pool(module: sl.SumPool2d) -> nir.SumPool2d:
    stride = module.kernel_size if module.stride is None else module.stride
    return nir.SumPool2d(kernel_size=pair(module.kernel_size), stride=pair(stride), padding=np.array((0, 0)))


def flatten(module: nn.Flatten) -> nir.Flatten:
    """The leaves run on `(batch, ...)`: NIR's dims leave the batch out."""
    start = module.start_dim - 1 if module.start_dim > 0 else module.start_dim
    end = module.end_dim - 1 if module.end_dim > 0 else module.end_dim
    return nir.Flatten(input_type=None, start_dim=start, end_dim=end)


def global_pool(_module: GlobalAvgPool) -> nir.AvgPool2d:
    """Kernel 0 x 0 until `set_types` sizes it to the whole frame."""
    return nir.AvgPool2d(kernel_size=np.array((0, 0)), stride=np.array((0, 0)), padding=np.array((0, 0)))


MODULE_MAP: dict[type, Callable[[Any], nir.NIRNode]] = {
    nn.Linear: affine, nn.Conv2d: conv2d, nn.AvgPool2d: avg_pool, sl.SumPool2d: sum_pool, nn.Flatten: flatten,
    GlobalAvgPool: global_pool, sl.IAF: neuron_node, sl.LIF: neuron_node, sl.ExpLeak: neuron_node,
}
RECURRENT = (sl.LIFRecurrent, sl.IAFRecurrent)


def view_graph(view: nn.Module, input_shape: int | Sequence[int]) -> nir.NIRGraph:
    """The NIR graph of an export view (`convert.export_view`) over `input_shape` inputs per step."""
    shape = (int(input_shape),) if isinstance(input_shape, int) else tuple(int(d) for d in input_shape)
    for module in view.modules():
        if isinstance(module, sl.ALIF):
            raise ConfigError(f"{type(module).__name__}: no NIR equivalent (NIR 1.0 neurons have a fixed threshold; "
                              "ALIF's adapts)")
    subgraphs: dict[int, nir.NIRGraph] = {}

    def placeholder(module: sl.LIFRecurrent) -> nir.NIRNode:
        node = nir.Scale(scale=np.ones(1, np.float32))  # swapped for the subgraph after tracing
        subgraphs[id(node)] = recurrent_node(module)
        return node

    module_map = {**MODULE_MAP, **{cls: placeholder for cls in RECURRENT}}
    unknown = [f"{name} ({type(m).__name__})" for name, m in view.named_modules()
               if not list(m.children()) and type(m) not in module_map and name]
    if unknown:
        raise ConfigError(f"no NIR node for {', '.join(unknown)}")
    with contextlib.redirect_stdout(io.StringIO()):  # nir's type inference prints guesses; set_types sets them
        try:
            graph = nirtorch.torch_to_nir(view, module_map, default_dict={})
        except ValueError as err:
            raise ConfigError(f"the net's forward is not a chain of layers and sums NIR can express: {err}") from err
    rename = {name: kind for name, node in graph.nodes.items()
              for cls, kind in ((nir.Input, "input"), (nir.Output, "output")) if isinstance(node, cls)}
    rename = {old: new for old, new in rename.items() if new not in graph.nodes or new == old}
    nodes = {rename.get(name, name): subgraphs.get(id(node), node) for name, node in graph.nodes.items()}
    edges = list(dict.fromkeys((rename.get(a, a), rename.get(b, b)) for a, b in graph.edges))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": SOURCE, "dt": DT})
    set_types(graph, shape)
    return graph


def set_types(graph: nir.NIRGraph, shape: tuple[int, ...]) -> None:
    """Give every node its input/output shape at one step (in place), starting from `shape` at the input."""
    sources: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        sources[dst].append(src)
    out: dict[str, np.ndarray] = {}
    pending = list(graph.nodes)
    while pending:
        name = next((n for n in pending if all(s in out for s in sources[n])), None)
        if name is None:
            raise ConfigError(f"the graph has a cycle outside a recurrent layer at {pending}")
        pending.remove(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Input):
            graph.nodes[name] = node = nir.Input(input_type=np.array(shape))
            out[name] = np.array(shape)
            continue
        shapes = {tuple(out[s]) for s in sources[name]}
        if len(shapes) != 1:
            raise ConfigError(f"NIR node {name!r} sums inputs of different shapes {sorted(shapes)}")
        size = np.array(shapes.pop())
        out[name] = node_output(graph, name, node, size)
    graph.input_type = {n: graph.nodes[n].input_type["input"] for n in graph.inputs}
    graph.output_type = {n: graph.nodes[n].output_type["output"] for n in graph.outputs}


def node_output(graph: nir.NIRGraph, name: str, node: nir.NIRNode, size: np.ndarray) -> np.ndarray:
    """Set `node`'s types for input shape `size` (replacing neuron nodes by full-shape ones); its output shape."""
    if isinstance(node, nir.Output):
        graph.nodes[name] = nir.Output(output_type=size)
        return size
    if isinstance(node, nir.NIRGraph):  # a recurrent neuron (recurrent_node): every inner node has the layer's shape
        for inner, child in node.nodes.items():
            if isinstance(child, nir.Input):
                node.nodes[inner] = nir.Input(input_type=size)
            elif isinstance(child, nir.Output):
                node.nodes[inner] = nir.Output(output_type=size)
            elif isinstance(child, NEURONS):
                node.nodes[inner] = full_shape(child, size)
            else:
                child.input_type, child.output_type = {"input": size}, {"output": size}
        node.input_type, node.output_type = {"input": size}, {"output": size}
        return size
    if isinstance(node, NEURONS):
        graph.nodes[name] = full_shape(node, size)
        return size
    if isinstance(node, nir.Affine | nir.Linear):
        output = np.array([node.weight.shape[0]])
    elif isinstance(node, nir.Conv2d):
        node.input_shape = tuple(int(d) for d in size[1:])
        spatial = calculate_conv_output(node.input_shape, node.padding, node.dilation, node.weight.shape[2:],
                                        node.stride)
        output = np.array([node.weight.shape[0], *spatial])
    elif isinstance(node, nir.AvgPool2d | nir.SumPool2d):
        if isinstance(node, nir.AvgPool2d) and not np.any(node.kernel_size):  # global_pool: the whole frame
            node.kernel_size = node.stride = np.array(size[1:])
        spatial = calculate_conv_output(size[1:], node.padding, 1, node.kernel_size, node.stride)
        output = np.array([size[0], *spatial])
    elif isinstance(node, nir.Flatten):
        output = calc_flatten_output(size, node.start_dim, node.end_dim)
    else:
        raise ConfigError(f"NIR node {name!r} ({type(node).__name__}) has no shape rule")
    node.input_type, node.output_type = {"input": size}, {"output": output.astype(int)}
    return node.output_type["output"]


def full_shape(node: nir.NIRNode, size: np.ndarray) -> nir.NIRNode:
    """The neuron node with each parameter broadcast to the layer's shape (one value per neuron)."""
    fields = {key: value for key, value in vars(node).items() if key not in ("input_type", "output_type")}
    for key, value in fields.items():
        if isinstance(value, np.ndarray) and key != "metadata":
            fields[key] = np.broadcast_to(value.reshape(value.shape if value.size > 1 else ()), tuple(size)).astype(
                np.float32).copy()
    return type(node)(**fields)
