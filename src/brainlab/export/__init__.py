"""`python -m brainlab.export ckpt_path=<ckpt> [format=nir] [output=<file>]`: ship a trained SNN as NIR.

The checkpoint's run config rebuilds the phase; each spiking layer becomes the plain sinabs layer its backend's plug
maps it to (`Backend.to_sinabs`), the net is laid out as an export view (`convert.export_view`: per-step wrappers
unwrapped, batch norm folded into its conv, each LIF's input scaling folded into the layer before it) and traced to
NIR by `nirtorch.torch_to_nir` (`graph.nir_graph`). NIR is read by Lava/Loihi, SpiNNaker2, Speck and several
simulators. The graph's input is the net's input at one time step: flattened features (FeedForwardSNN,
ReadoutSNN), one `(channels, height, width)` frame (ConvSNN) or one encoded frame (SEW-ResNet:
`net.encoder(images)[:, t]`).

Exported: feed-forward IAF/LIF nets (and their synaptic current as CubaLIF), fastsnn's single-spike layers and
leaky readout, recurrent IAF/LIF (a subgraph with the recurrent weight as an edge), ConvSNN with avg/sum pooling,
SEW-ResNet with `connect=add` and the small stem. Refused in one line naming the layer: max pooling (NIR 1.0 has
no MaxPool node), SEW `and`/`iand` joins (a product of activations), the Spiking ViT's attention (likewise), ALIF
(NIR neurons have a fixed threshold), nets without spiking layers.

NIR 1.0 neuron nodes carry no reset, spike function or membrane floor: each neuron node carries the layer's
discrete-time semantics in its `metadata`, and `read_nir(path, batch_size)` (the project's reader) restores them:
it gives the trained net's spikes (exactly, or within float rounding where batch norm was folded). Plain
`sinabs.from_nir` reads the dense feed-forward files without that metadata; the CLI names the nodes where that
changes anything.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import nir
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from brainlab.core.errors import BrainlabError, ConfigError
from brainlab.eval import find_run_config
from brainlab.export.convert import export_view, fold_input_scaling, stack_view, to_sinabs
from brainlab.export.graph import neuron_metadata, neuron_node, view_graph
from brainlab.export.reader import plain_import_differences, read_nir, restore_semantics
from brainlab.snn.fastsnn import SILENT, SilenceAfterSpike

__all__ = [
    "SILENT", "SilenceAfterSpike", "export_nir", "export_view", "fold_input_scaling", "load_phase", "neuron_metadata",
    "neuron_node", "nir_graph", "plain_import_differences", "read_nir", "restore_semantics", "to_sinabs",
]

FORMATS = ("nir",)


def load_phase(ckpt_path: str | Path) -> tuple[nn.Module, tuple[int, ...], int]:
    """The trained phase from a checkpoint and its run's config; returns (phase, input shape, time bins)."""
    cfg = OmegaConf.load(find_run_config(ckpt_path))
    OmegaConf.update(cfg, "paths.output_dir", str(Path(ckpt_path).resolve().parent), force_add=True)
    try:
        phase = instantiate(cfg.model, _recursive_=False)
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
        phase.load_state_dict(state)
    except BrainlabError:
        raise
    except Exception as err:  # one line, not a traceback: the checkpoint does not rebuild its phase
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(f"{ckpt_path}: its phase does not rebuild from the run config ({type(err).__name__}: "
                          f"{first})") from err
    phase.eval()
    shape = tuple(int(d) for d in cfg.data.get("input_shape", ()))
    return phase, shape, int(cfg.data.get("n_time_bins", 1))


def export_nir(ckpt_path: str | Path, output: str | Path | None = None) -> Path:
    """Write the checkpoint's SNN as a NIR graph (HDF5); returns the file written (never overwrites)."""
    target = Path(output) if output else Path(ckpt_path).with_suffix(".nir")
    if target.exists():
        raise ConfigError(f"{target} already exists; nothing was overwritten: pass output=<new file>")
    phase = load_phase(ckpt_path)[0]
    view, shape = export_view(getattr(phase, "net", phase))
    graph = view_graph(view, shape)
    target.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(target), graph)
    return target


def nir_graph(body: nn.Module, features: int | Sequence[int], steps: int = 1) -> nir.NIRGraph:
    """The NIR graph of a layer stack over `features` inputs per step (converted to sinabs first, not in place);
    `steps` is kept for old callers (the graph is per step)."""
    del steps
    return view_graph(stack_view(body), features)


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
