"""`python -m brainlab.export ckpt_path=<ckpt> [format=nir] [output=<file>]`: ship a trained SNN.

The checkpoint's run config rebuilds the phase; its spiking layers are converted to their sinabs equivalents
(fused -> sinabs IAF/LIF with the trained parameters; exodus -> sinabs via sinabs-exodus's own conversion),
then sinabs writes NIR (read by Lava/Loihi, SpiNNaker2, Speck and several simulators). The exported graph takes
the net's flattened input features per time step.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import nir
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
    """A copy of `net` whose spiking layers are sinabs layers with the same (trained) parameters."""
    net = copy.deepcopy(net)
    to_sinabs_inplace(net)
    return net


def to_sinabs_inplace(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if is_spiking(child) and not isinstance(child, sinabs.layers.StatefulLayer):
            setattr(module, name, sinabs_layer(child))
        else:
            to_sinabs_inplace(child)


def sinabs_layer(layer: nn.Module) -> nn.Module:
    """The sinabs equivalent of one backend layer."""
    spec = getattr(layer, "spec", None)
    if spec is None or not hasattr(layer, "tau_mem"):
        raise ConfigError(
            f"{type(layer).__name__} layers have no sinabs/NIR equivalent (e.g. backend=fastsnn's single-spike "
            "layer): export a model trained with backend=sinabs, fused or exodus"
        )
    out = sinabs_backend.build(spec)
    with torch.no_grad():
        if layer.tau_mem is not None:
            out.tau_mem.copy_(layer.tau_mem)
        if getattr(layer, "tau_syn", None) is not None:
            out.tau_syn.copy_(layer.tau_syn)
    return out


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
    graph = with_1d_parameters(sinabs.to_nir(model, sample))
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
