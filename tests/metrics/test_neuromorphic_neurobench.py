"""Conformance: brainlab's neuromorphic metrics equal NeuroBench 2.3.0's on the same models and inputs.

NeuroBench is a test-only dependency installed without its own dependencies (they would replace torch):
`pip install --no-deps neurobench==2.3.0 snntorch` (snntorch: NeuroBench imports it at import time).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from brainlab.metrics.neuromorphic import measure
from brainlab.snn import fused, sinabs_backend
from brainlab.snn.factory import is_spiking, reset_states, spiking_layers

neurobench = pytest.importorskip("neurobench")
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import (  # noqa: E402
    ActivationSparsity,
    ActivationSparsityByLayer,
    SynapticOperations,
)
from neurobench.models import TorchModel  # noqa: E402


def neurobench_figures(net: nn.Module, batches: list[torch.Tensor]) -> dict:
    """NeuroBench's figures as its Benchmark.run gets them: hooks reset after every batch, the spiking layers of
    `net` registered as activation modules. Footprint is taken before the first forward (state still empty)."""
    model = TorchModel(net)
    for layer in {type(m) for m in net.modules() if is_spiking(m)}:
        model.add_activation_module(layer)
    static = {"footprint": Footprint()(model), "connection_sparsity": ConnectionSparsity()(model)}
    model.register_hooks()
    synops, by_layer = SynapticOperations(), ActivationSparsityByLayer()
    sparsity, total = 0.0, sum(len(x) for x in batches)
    with torch.no_grad():
        for x in batches:
            reset_states(net.modules())
            preds = model(x)
            ops = synops(model, preds, (x, None))
            sparsity += ActivationSparsity()(model, preds, (x, None)) * len(x) / total
            layers = by_layer(model, preds, (x, None))
            model.reset_hooks()
    model.cleanup_hooks()
    return {**static, **ops, "activation_sparsity": sparsity, "by_layer": layers}


def as_built(net: nn.Module) -> nn.Module:
    """`net` with empty neuron state, as a freshly built model has (NeuroBench's footprint counts the state)."""
    for _, layer in spiking_layers(net):
        for name, buffer in list(layer.named_buffers(recurse=False)):
            setattr(layer, name, buffer.new_empty(0))
    return net


def assert_conforms(make: Callable[[], nn.Module], batches: list[torch.Tensor]) -> dict:
    """`make()` builds the same net each call (seeded): one for brainlab, one for NeuroBench."""
    ours = measure(make(), batches, warn=False)
    net = make()
    theirs = neurobench_figures(as_built(net), batches)
    assert ours["synops"] == pytest.approx(theirs["Effective_ACs"], rel=1e-9)
    assert ours["macs"] == pytest.approx(theirs["Effective_MACs"], rel=1e-9)
    assert ours["dense_ops"] == pytest.approx(theirs["Dense"], rel=1e-9)
    assert ours["activation_sparsity"] == pytest.approx(theirs["activation_sparsity"], abs=1e-12)
    per_layer = {name.rsplit(".", 1)[-1]: v for name, v in ours["activation_sparsity_per_layer"].items()}
    assert per_layer == pytest.approx(theirs["by_layer"], abs=1e-12)
    assert round(ours["connection_sparsity"], 4) == theirs["connection_sparsity"]
    assert ours["footprint_bytes"] == theirs["footprint"]
    print(
        f"\n{type(net).__name__}: brainlab synops {ours['synops']:.6g} macs {ours['macs']:.6g} dense "
        f"{ours['dense_ops']:.6g} act.sp {ours['activation_sparsity']:.4f} conn.sp {ours['connection_sparsity']:.4f} "
        f"footprint {ours['footprint_bytes']} | NeuroBench ACs {theirs['Effective_ACs']:.6g} MACs "
        f"{theirs['Effective_MACs']:.6g} dense {theirs['Dense']:.6g} act.sp {theirs['activation_sparsity']:.4f} "
        f"conn.sp {theirs['connection_sparsity']} footprint {theirs['footprint']}"
    )
    return ours


def iaf(**kw) -> nn.Module:
    return sinabs_backend.neuron(kind="iaf", spike_threshold=0.5, **kw)


class Frames(nn.Module):
    """Synaptic layers applied per time step of `(batch, time, ...)`, spiking layers on the whole sequence."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if is_spiking(layer):
                x = layer(x)
            else:
                b, t = x.shape[:2]
                x = layer(x.flatten(0, 1)).unflatten(0, (b, t))
        return x


def spikes(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def seeded(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return make()

    return build


def test_linear_binary_spikes() -> None:
    make = seeded(lambda: nn.Sequential(nn.Linear(12, 10), iaf(), nn.Linear(10, 4)))
    ours = assert_conforms(make, [spikes(3, 5, 12), spikes(2, 5, 12, seed=1)])
    assert ours["synops"] > 0 and ours["macs"] == 0


def test_conv2d_stride_padding_groups_dilation() -> None:
    make = seeded(lambda: Frames(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), iaf(),
        nn.Conv2d(4, 6, 3, stride=2, padding=2, groups=2, dilation=2), iaf(),
        nn.Conv2d(6, 3, (2, 3), stride=(1, 2), padding=(0, 1), groups=3),
    ))
    ours = assert_conforms(make, [spikes(2, 3, 2, 9, 9), spikes(2, 3, 2, 9, 9, seed=1)])
    assert ours["synops"] > 0


def test_conv1d_stride_padding_counts_the_true_pairs() -> None:
    conv = nn.Conv1d(1, 1, 3, stride=2, padding=1, bias=False)
    net = Frames(conv)
    x = torch.zeros(1, 1, 1, 8)
    x[..., [0, 1, 2, 7]] = 1  # 4 spikes; windows (-1..1) (1..3) (3..5) (5..7) see 2 + 2 + 0 + 1 pairs
    assert measure(net, [x], warn=False)["synops"] == 5
    make = seeded(lambda: Frames(
        nn.Conv1d(3, 6, 5, stride=3, padding=2, groups=3), iaf(), nn.Conv1d(6, 2, 3, dilation=2)
    ))
    assert_conforms(make, [spikes(4, 3, 3, 20)])


def test_pruned_weights_are_not_synapses() -> None:
    make = seeded(lambda: nn.Sequential(nn.Linear(16, 16), iaf(), nn.Linear(16, 4)))
    dense = measure(make(), [spikes(4, 6, 16)], warn=False)

    def pruned() -> nn.Module:
        net = make()
        with torch.no_grad():
            for layer in (net[0], net[2]):
                layer.weight[torch.rand_like(layer.weight) < 0.5] = 0
            net[0].weight *= 2  # keep the hidden layer firing
        return net

    ours = assert_conforms(pruned, [spikes(4, 6, 16)])
    assert 0.4 < ours["connection_sparsity"] < 0.6
    assert ours["dense_ops"] == dense["dense_ops"]  # dense counts every weight, pruned or not


def test_multi_spike_and_real_inputs_count_as_macs() -> None:
    make = seeded(lambda: nn.Sequential(nn.Linear(8, 8), sinabs_backend.neuron(kind="iaf", spike_threshold=0.2),
                                       nn.Linear(8, 3)))
    counts = spikes(3, 4, 8) * 2  # values 0 or 2: event counts
    ours = assert_conforms(make, [counts])
    assert ours["macs"] > 0 and ours["synops_spike_count"] >= ours["synops"]
    ours = assert_conforms(make, [torch.rand(3, 4, 8)])
    assert ours["macs"] >= 4 * 8 * 8  # every input non-zero: the first layer is dense (4 steps x 8 x 8 per sample)


@pytest.mark.parametrize(("kind", "threshold"), [("iaf", 0.3), ("lif", 0.05)])  # sinabs scales LIF input by 1-alpha
def test_recurrent_layers(kind: str, threshold: float) -> None:
    def make() -> nn.Module:
        return nn.Sequential(
            nn.Linear(10, 12),
            sinabs_backend.neuron(kind=kind, recurrent=True, features=12, spike_threshold=threshold, tau_mem=5.0),
            nn.Linear(12, 3),
        )

    batches = [spikes(3, 6, 10), spikes(1, 6, 10, seed=2)]
    ours = assert_conforms(seeded(make), batches)
    assert ours["activation_sparsity"] < 0.9, "the recurrent layer fires, so its rec_connect has work"
    # the fused backend applies rec_connect's weight inside its kernel: counted from its spikes, same figures
    twin = nn.Sequential(
        nn.Linear(10, 12), fused.neuron(kind=kind, recurrent=True, features=12, spike_threshold=threshold, tau_mem=5.0),
        nn.Linear(12, 3),
    )
    twin.load_state_dict(seeded(make)().state_dict(), strict=False)
    got = measure(twin, batches, warn=False)
    for key in ("synops", "macs", "dense_ops", "activation_sparsity"):
        assert got[key] == pytest.approx(ours[key]), key


def test_trained_default_checkpoint_on_its_test_loader(trained_run) -> None:
    from hydra.utils import instantiate

    from brainlab.export import load_phase

    run_dir, cfg = trained_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    data = instantiate(cfg.data, _convert_="all")
    data.prepare_data()
    data.setup("test")
    batches = [x for x, _ in data.test_dataloader()]
    ours = assert_conforms(lambda: load_phase(ckpt)[0].net, batches)
    assert ours["samples"] == sum(len(x) for x in batches)
    assert ours["synops"] + ours["macs"] > 0
