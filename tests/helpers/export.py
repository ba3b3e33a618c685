"""NIR round trips: a net's spikes and outputs against those of its NIR file read back by `brainlab.export.read_nir`,
and the shipped SNN nets trained briefly in-process on their fixtures, saved in the run layout `export_nir` reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nir
import torch
from hydra.utils import instantiate
from nirtorch.utils import sanitize_name
from omegaconf import DictConfig, OmegaConf
from torch import nn

from brainlab.export import export_view, read_nir
from brainlab.export.convert import spiking_layers
from brainlab.export.graph import view_graph
from brainlab.nets.encoding import ImageSNN
from brainlab.nets.readout_snn import LeakyReadout
from helpers.config import QUIET, compose_cfg

#: NIR nodes whose output is spikes (a recurrent layer is a subgraph)
SPIKING_NODES = (nir.IF, nir.LIF, nir.CubaLIF, nir.NIRGraph)


def reset(net: nn.Module) -> nn.Module:
    """`net` in evaluation mode with every stateful layer reset."""
    for module in net.modules():
        if hasattr(module, "reset_states") and module is not net:
            module.reset_states()
    return net.eval()


def neuron_layers(net: nn.Module) -> list[nn.Module]:
    """The spiking layers of a net, in order (a leaky readout gives no spikes)."""
    return [layer for _, layer in spiking_layers(net) if not isinstance(layer, LeakyReadout)]


def outputs_and_spikes(module: nn.Module, layers: Sequence[nn.Module], x: torch.Tensor
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(`module(x)`, the output of each of `layers` during that call, in call order)."""
    seen: list[torch.Tensor] = []
    handles = [layer.register_forward_hook(lambda _m, _i, out: seen.append(out)) for layer in layers]
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for handle in handles:
            handle.remove()
    out = out[0] if isinstance(out, tuple) else out
    return out, [s[0] if isinstance(s, tuple) else s for s in seen]


def hidden_spikes(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(the net's output on `x` from reset states, the spikes of each of its spiking layers)."""
    return outputs_and_spikes(reset(net), neuron_layers(net), x)


@dataclass
class RoundTrip:
    """A net and its NIR file read back, on the same batch: outputs and the spikes of every spiking layer."""

    expected: torch.Tensor
    got: torch.Tensor
    spikes: list[torch.Tensor]
    read_spikes: list[torch.Tensor]
    frames: torch.Tensor  # what the reader took: `(batch * time, *step shape)`

    def assert_same(self, atol: float, rtol: float = 0.0) -> None:
        """Every spike identical (and every spiking layer spikes: the comparison tests the neurons); the outputs
        within `atol` / `rtol`."""
        assert len(self.spikes) == len(self.read_spikes) > 0, (len(self.spikes), len(self.read_spikes))
        unmatched = list(self.read_spikes)  # call orders differ where branches run side by side (a SEW shortcut)
        for i, spikes in enumerate(self.spikes):
            assert spikes.sum() > 0, f"spiking layer {i} is silent on the batch: the comparison would not test it"
            same = next((j for j, read in enumerate(unmatched) if read.numel() == spikes.numel()
                         and torch.equal(read.reshape(spikes.shape), spikes)), None)
            assert same is not None, f"spiking layer {i}: no layer read back has its spikes"
            del unmatched[same]
        assert self.expected.abs().sum() > 0
        torch.testing.assert_close(self.got, self.expected, rtol=rtol, atol=atol)


def step_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the NIR graph takes at each step, `(batch, time, ...)`: the encoded frames of an image net."""
    return net.encoder(x) if isinstance(net, ImageSNN) else x


def round_trip(net: nn.Module, path: Path, x: torch.Tensor) -> RoundTrip:
    """`net` (a phase or a net) on the batch `x` against `read_nir(path)` on the same per-step input."""
    graph = nir.read(str(path))
    shape = next(node for node in graph.nodes.values() if isinstance(node, nir.Input)).input_type["input"]
    inner = getattr(net, "net", net)
    expected, spikes = hidden_spikes(net, x)
    batch, steps = expected.shape[:2]
    reader = read_nir(path, batch_size=batch)
    spiking = {sanitize_name(name) for name, node in graph.nodes.items() if isinstance(node, SPIKING_NODES)}
    layers = [reader.layers[name] for name in reader.order if name in spiking]
    frames = step_input(inner, x).reshape(batch * steps, *(int(s) for s in shape))
    got, read_spikes = outputs_and_spikes(reader, layers, frames)
    return RoundTrip(expected, got.reshape(expected.shape), spikes, read_spikes, frames)


def node_kinds(graph: nir.NIRGraph) -> set[str]:
    """The node types of a graph and of its subgraphs."""
    kinds = set()
    for node in graph.nodes.values():
        kinds.add(type(node).__name__)
        if isinstance(node, nir.NIRGraph):
            kinds |= node_kinds(node)
    return kinds


def compose_run(run_dir: Path, overrides: Sequence[str]) -> DictConfig:
    """A config composed as `python train.py <overrides>` would, writing into `run_dir`."""
    return compose_cfg(run_dir, [*QUIET, f"paths.data_dir={run_dir.parent}", *overrides])


def save_run(phase: nn.Module, cfg: DictConfig, run_dir: Path) -> Path:
    """The run layout `export_nir` reads: `checkpoints/last.ckpt` (the phase's weights under `state_dict`, as
    Lightning saves them) and the run's config in `.hydra/config.yaml`; returns the checkpoint."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": phase.state_dict()}, ckpt)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return ckpt


def untrained_run(run_dir: Path, overrides: Sequence[str]) -> Path:
    """The checkpoint of a phase as built from its config (for refusals, which depend on the layout only)."""
    cfg = compose_run(run_dir, overrides)
    torch.manual_seed(0)
    return save_run(instantiate(cfg.model, _recursive_=False), cfg, run_dir)


def affine_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: m.weight.detach().clone() for name, m in module.named_modules()
            if isinstance(m, nn.Linear | nn.Conv2d)}


@dataclass
class Trained:
    """A phase trained briefly on its fixture, its checkpoint and a real batch it was not trained on."""

    phase: nn.Module
    cfg: DictConfig
    ckpt: Path
    batch: torch.Tensor


def train_briefly(run_dir: Path, overrides: Sequence[str], steps: int = 3, lr: float = 1e-2) -> Trained:
    """A few Adam steps of the phase's own training step on one fixture batch (every Linear/Conv weight moves),
    saved in the run layout; the batch to compare on is the first of the validation loader."""
    cfg = compose_run(run_dir, overrides)
    torch.manual_seed(0)
    phase = instantiate(cfg.model, _recursive_=False)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    before = affine_weights(phase)
    optimizer = torch.optim.Adam(phase.parameters(), lr=lr)
    phase.train()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no trainer: the phase's logging is skipped
        for _ in range(steps):
            optimizer.zero_grad()
            phase.training_step(batch, 0).backward()
            optimizer.step()
    still = [name for name, weight in affine_weights(phase).items() if torch.equal(weight, before[name])]
    assert not still, f"training left the weights of {still} at their initial values"
    phase.eval()
    frames = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)[0]
    return Trained(phase, cfg, save_run(phase, cfg, run_dir), frames)


def write_nir(net: nn.Module, path: Path) -> Path:
    """The NIR file of a net's export view (`export_view` -> `view_graph`), as `export_nir` writes a checkpoint's."""
    view, shape = export_view(net)
    nir.write(str(path), view_graph(view, shape))
    return path
