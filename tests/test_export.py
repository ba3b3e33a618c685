"""NIR export of every backend's IAF/LIF layers: exact round trips through sinabs's own NIR import (and through
`read_nir`, which restores the reset / spike function / membrane floor kept in the node metadata)."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest
import sinabs
import sinabs.layers as sl
import torch
from helpers.config import TINY, compose_cfg
from helpers.events import make_shd
from torch import nn

from brainlab.core.errors import ConfigError, DataError
from brainlab.export import (
    SilenceAfterSpike,
    export_nir,
    export_view,
    fold_input_scaling,
    load_phase,
    nir_graph,
    plain_import_differences,
    read_nir,
    to_sinabs,
)
from brainlab.export.graph import view_graph
from brainlab.nets.conv_snn import ConvSNN
from brainlab.nets.readout_snn import LeakyReadout
from brainlab.nets.sew_resnet import SEWResNet
from brainlab.nets.snn import FeedForwardSNN
from brainlab.nets.spiking_vit import SpikingViT
from brainlab.snn.exodus_backend import ExodusNeuron
from brainlab.snn.factory import is_spiking
from brainlab.snn.fastsnn import FastSNNNeuron
from brainlab.snn.fused import neuron as fused_neuron
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron
from brainlab.train import run

LIF = ["model.net.neuron.kind=lif", "++model.net.neuron.tau_mem=4.0", "model.net.neuron.spike_threshold=0.1"]


def round_trip(ckpt: Path, batch: int = 3, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(the trained net's output, the output of its NIR file read back by sinabs, or by `read_nir` if `exact`)
    on the same random spikes."""
    path = export_nir(ckpt, ckpt.with_suffix(".exact.nir" if exact else ".nir"))
    imported = read_nir(path, batch_size=batch) if exact else sinabs.from_nir(nir.read(str(path)), batch_size=batch)
    phase, shape, steps = load_phase(ckpt)
    torch.manual_seed(0)
    x = (torch.rand(batch, steps, *shape) < 0.2).float()
    expected, spikes = hidden_spikes(phase, x)
    assert all(s.sum() > 0 for s in spikes), "every spiking layer spikes: the comparison tests the neurons"
    got = imported(x.flatten(start_dim=2).reshape(batch * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    return expected, got.reshape(expected.shape)


def hidden_spikes(phase: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(the phase's output on `x`, the spikes of each of its spiking layers)."""
    seen: list[torch.Tensor] = []
    layers = [m for m in phase.modules() if is_spiking(m)]
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out)) for m in layers]
    phase.reset_states() if hasattr(phase, "reset_states") else reset(phase)
    out = phase(x)
    for handle in handles:
        handle.remove()
    return out, seen


@pytest.mark.parametrize("backend", ["sinabs", "fused"])
def test_trained_lif_net_reads_back_with_the_same_spikes(tmp_path: Path, backend: str) -> None:
    cfg = compose_cfg(tmp_path / backend, [*TINY, *LIF, f"backend={backend}", "trainer.limit_train_batches=2",
                                           "test=false"])
    run(cfg)
    expected, got = round_trip(tmp_path / backend / "checkpoints" / "last.ckpt")
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(round_trip(tmp_path / backend / "checkpoints" / "last.ckpt", exact=True)[1], expected,
                               rtol=1e-4, atol=1e-4)


def test_single_spike_zero_reset_lif_reads_back_exactly_only_with_read_nir(tmp_path: Path) -> None:
    """sinabs's LIF import is multi-spike with a subtract reset; read_nir restores single-spike / zero reset."""
    overrides = [*TINY, *LIF, "++model.net.neuron.spike_fn=single",
                 "++model.net.neuron.reset=zero", "trainer.limit_train_batches=2", "test=false"]
    run(compose_cfg(tmp_path / "zero", overrides))
    ckpt = tmp_path / "zero" / "checkpoints" / "last.ckpt"
    expected, got = round_trip(ckpt, exact=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(round_trip(ckpt)[1], expected, atol=1e-3), "plain sinabs.from_nir reads other neurons"
    graph = nir.read(str(ckpt.with_suffix(".exact.nir")))
    lif = [name for name, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    assert {graph.nodes[name].metadata["reset"] for name in lif} == {"MembraneReset"}
    assert plain_import_differences(ckpt.with_suffix(".exact.nir")) == lif


def test_folding_keeps_the_spikes_and_writes_the_input_resistance() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 5), sl.LIF(tau_mem=torch.linspace(2.0, 9.0, 5)), nn.Linear(5, 2))
    x = (torch.rand(2, 30, 6) < 0.5).float() * 2
    expected = net(x)
    folded = to_sinabs(net)
    fold_input_scaling(folded)
    folded[1].reset_states()
    assert not folded[1].norm_input
    spikes = folded[1](folded[0](x))
    net[1].reset_states()
    torch.testing.assert_close(spikes, net[1](net[0](x)))
    torch.testing.assert_close(folded(x), expected, rtol=1e-5, atol=1e-5)


def test_synaptic_current_exports_as_cuba_lif_with_metadata(tmp_path: Path) -> None:
    overrides = [*TINY, *LIF, "++model.net.neuron.tau_syn=3.0", "trainer.limit_train_batches=1", "test=false"]
    run(compose_cfg(tmp_path / "cuba", overrides))
    graph = nir.read(str(export_nir(tmp_path / "cuba" / "checkpoints" / "last.ckpt")))
    neurons = [node for node in graph.nodes.values() if isinstance(node, nir.CubaLIF)]
    assert len(neurons) == 2
    assert float(neurons[0].tau_syn[0]) == pytest.approx(3.0)
    assert float(neurons[0].tau_mem[0]) == pytest.approx(4.0, rel=0.05)


class SinabsSubclassLIF(sl.LIF):
    """Stands in for a sinabs-exodus layer on CPU: exodus's IAF/LIF subclass sinabs's and keep its arguments."""


def test_exodus_style_layers_convert_to_plain_sinabs_layers() -> None:
    torch.manual_seed(2)
    inner = SinabsSubclassLIF(tau_mem=torch.tensor(6.0), spike_threshold=torch.tensor(0.7))
    net = nn.Sequential(nn.Linear(4, 3), ExodusNeuron(inner))
    converted = to_sinabs(net)
    assert type(converted[1]) is sl.LIF
    assert float(converted[1].tau_mem) == 6.0 and float(converted[1].spike_threshold) == pytest.approx(0.7)
    x = torch.rand(2, 10, 4) * 3
    torch.testing.assert_close(converted(x), inner(net[0](x)))


def test_adaptive_layers_are_refused_naming_the_fixed_nir_threshold() -> None:
    net = nn.Sequential(nn.Linear(4, 3), sl.ALIF(tau_mem=5.0, tau_adapt=20.0))
    with pytest.raises(ConfigError, match="no NIR equivalent.*fixed threshold"):
        to_sinabs(net)
    layer = fused_neuron(kind="alif", tau_mem=5.0, tau_adapt=20.0)
    with pytest.raises(ConfigError, match="no NIR equivalent.*fixed threshold"):
        to_sinabs(nn.Sequential(nn.Linear(4, 3), layer))


def read_back(view_net: nn.Module, path: Path, frames: torch.Tensor) -> torch.Tensor:
    """`read_nir` of the NIR written for `view_net` (`export_view`) on `(batch, time, ...)` frames."""
    view, shape = export_view(view_net)
    nir.write(str(path), view_graph(view, shape))
    batch, steps = frames.shape[:2]
    out = read_nir(path, batch_size=batch)(frames.reshape(batch * steps, *frames.shape[2:]))
    return out.reshape(batch, steps, *out.shape[1:])


def reset(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if hasattr(module, "reset_states") and module is not net:
            module.reset_states()
    return net.eval()


RECURRENT = [
    (sinabs_neuron, dict(kind="lif", tau_mem=5.0, spike_threshold=0.3)),
    (sinabs_neuron, dict(kind="iaf", spike_threshold=0.5)),
    (fused_neuron, dict(kind="lif", tau_mem=5.0, spike_threshold=0.3, tau_syn=3.0)),
]


@pytest.mark.parametrize(("make", "neuron"), RECURRENT, ids=["sinabs-lif", "sinabs-iaf", "fused-cuba-lif"])
def test_recurrent_layers_export_as_subgraphs_with_a_recurrent_edge(tmp_path: Path, make, neuron) -> None:
    torch.manual_seed(5)
    net = FeedForwardSNN([4], 3, make, hidden_dim=6, n_hidden=1, neuron={**neuron, "recurrent": True})
    with torch.no_grad():
        next(m for m in net.modules() if isinstance(m, nn.Linear) and m.in_features == 6 and m.out_features == 6
             ).weight.normal_(0, 0.3)
    x = (torch.rand(2, 25, 4) < 0.4).float() * 2
    expected, (spikes,) = hidden_spikes(reset(net), x)
    assert spikes.sum() > 0
    got = read_back(net, tmp_path / "rec.nir", x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    sub = next(node for node in nir.read(str(tmp_path / "rec.nir")).nodes.values() if isinstance(node, nir.NIRGraph))
    assert ("neuron", "w_rec") in sub.edges and ("w_rec", "neuron") in sub.edges


def test_conv_snn_reads_back_with_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(6)
    for make in (sinabs_neuron, fused_neuron):
        net = ConvSNN([2, 16, 16], 4, make, channels=(4, 8), hidden_dim=16, input_pool=2,
                      neuron=dict(kind="lif", tau_mem=5.0, spike_threshold=0.05))
        x = (torch.rand(3, 10, 2, 16, 16) < 0.3).float()
        expected, spikes = hidden_spikes(reset(net), x)
        assert all(s.sum() > 0 for s in spikes)
        got = read_back(net, tmp_path / "conv.nir", x)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        kinds = {type(node).__name__ for node in nir.read(str(tmp_path / "conv.nir")).nodes.values()}
        assert {"Conv2d", "AvgPool2d", "Flatten", "LIF", "Affine"} <= kinds
        (tmp_path / "conv.nir").unlink()


def test_max_pooling_is_refused_naming_the_layer() -> None:
    net = ConvSNN([2, 8, 8], 4, sinabs_neuron, channels=(4,), pool_kind="max")
    with pytest.raises(ConfigError, match=r"^layers\.2: MaxPool2d has no NIR 1\.0 node"):
        export_view(net)


def test_sew_resnet_with_add_reads_back_within_the_batch_norm_folding_tolerance(tmp_path: Path) -> None:
    """Batch norm is folded into its conv: equal up to float rounding (stated tolerance 1e-4)."""
    torch.manual_seed(7)
    net = SEWResNet([3, 16, 16], 5, sinabs_neuron, layers=(1, 1), channels=(4, 8), stem="small", time_steps=4,
                    neuron=dict(kind="lif", tau_mem=3.0, spike_threshold=0.05))
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.normal_(0, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_(0, 0.2)
    images = torch.rand(2, 3, 16, 16)
    expected, spikes = hidden_spikes(reset(net), images)
    assert all(s.sum() > 0 for s in spikes)
    got = read_back(net, tmp_path / "sew.nir", net.encoder(images))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    graph = nir.read(str(tmp_path / "sew.nir"))
    inputs = [dst for _, dst in graph.edges]
    assert any(inputs.count(name) == 2 for name in graph.nodes), "a residual sum: two edges into one node"
    assert not any(isinstance(node, nir.NIRGraph) for node in graph.nodes.values())


@pytest.mark.parametrize(("knobs", "match"), [
    (dict(connect="and"), r"^blocks\.0: SEW connect=and multiplies"),
    (dict(connect="iand"), r"^blocks\.0: SEW connect=iand multiplies"),
    (dict(stem="imagenet"), r"^stem_rest\.1: MaxPool2d has no NIR 1\.0 node"),
])
def test_sew_joins_and_the_max_pool_stem_are_refused_naming_the_layer(knobs: dict, match: str) -> None:
    net = SEWResNet([3, 16, 16], 5, sinabs_neuron, layers=(1,), channels=(4,), **{"stem": "small", **knobs})
    with pytest.raises(ConfigError, match=match) as err:
        export_view(net)
    assert "\n" not in str(err.value)


def test_spiking_vit_and_non_snn_nets_are_refused_in_one_line() -> None:
    vit = SpikingViT([3, 8, 8], 3, sinabs_neuron, patch_size=2, embed_dim=8, depth=1, heads=2)
    with pytest.raises(ConfigError, match=r"attn.*no node for a product of two activations"):
        export_view(vit)
    with pytest.raises(ConfigError, match="has no spiking layers: NIR export is for the SNN nets"):
        export_view(nn.Sequential(nn.Linear(3, 2)))


@pytest.mark.gpu
def test_real_exodus_layers_export_to_the_same_spikes(tmp_path: Path) -> None:
    pytest.importorskip("sinabs.exodus")
    overrides = [*TINY, "backend=exodus", "trainer=gpu", "trainer.limit_train_batches=2", "test=false"]
    run(compose_cfg(tmp_path / "exodus", overrides))
    ckpt = tmp_path / "exodus" / "checkpoints" / "last.ckpt"
    imported = sinabs.from_nir(nir.read(str(export_nir(ckpt))), batch_size=2)
    phase, shape, steps = load_phase(ckpt)
    phase = phase.cuda()
    x = (torch.rand(2, steps, *shape, device="cuda") < 0.2).float()
    phase.reset_states()
    expected = phase(x).cpu()
    got = imported(x.cpu().flatten(start_dim=2).reshape(2 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["iaf", "lif"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fastsnn_layer_converts_to_a_sinabs_layer_with_the_same_spikes(kind: str, dtype: torch.dtype) -> None:
    torch.manual_seed(4)
    for tau, dt, threshold in [(10.0, 1.0, 1.0), (3.0, 2.0, 0.5), (50.0, 1.0, 2.0)]:
        layer = FastSNNNeuron(kind=kind, tau_mem=tau, dt=dt, spike_threshold=threshold)
        converted = to_sinabs(nn.Sequential(layer))[0].to(dtype)
        assert type(converted) is (sl.IAF if kind == "iaf" else sl.LIF) and isinstance(converted.reset_fn,
                                                                                     SilenceAfterSpike)
        if kind == "lif":
            assert float(converted.alpha_mem_calculated.detach()) == pytest.approx(layer.beta, rel=1e-6)
        for steps in (1, 9, 150):  # 150 > 2 x fastsnn's block: its blocked filter
            x = torch.randn(3, steps, 11, dtype=dtype) * 0.6 + 0.1
            layer.reset_states()
            converted.reset_states()
            expected = layer(x)
            assert torch.equal(converted(x), expected)
            assert torch.equal(converted(x), layer(x)), "state carries over calls the same way"
        assert 0 < expected.sum() and (expected.sum(dim=1) <= 1).all()


def test_leaky_readout_converts_to_exp_leak() -> None:
    readout = LeakyReadout(tau=20.0, dt=2.0)
    converted = to_sinabs(nn.Sequential(readout))[0]
    assert type(converted) is sl.ExpLeak and not converted.norm_input
    x = torch.randn(2, 30, 5)
    torch.testing.assert_close(converted(x), readout(x), rtol=1e-5, atol=1e-5)


def test_trained_shd_fastsnn_run_reads_back_with_the_same_outputs(tmp_path: Path) -> None:
    """experiment=shd_fastsnn (single-spike LIF, dt 20, leaky readout) on a generated SHD fixture."""
    root = make_shd(tmp_path / "shd", train=4, test=2, events=600)
    cfg = compose_cfg(tmp_path / "run", [
        "experiment=shd_fastsnn", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.val_fraction=0.25", "data.transform.transforms.1.time_window=100000", "data.n_time_bins=10",
        "model.net.neuron.dt=20.0", "model.net.hidden_dim=32", "model.net.neuron.spike_threshold=0.3",
        "trainer.max_epochs=1", "trainer.limit_train_batches=1", "test=false", "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false", f"paths.data_dir={tmp_path}",
    ])
    run(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path = export_nir(ckpt)
    graph = nir.read(str(path))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert sorted(kinds.values()) == ["Affine", "Affine", "Input", "LI", "LIF", "Output"]
    hidden = next(node for node in graph.nodes.values() if isinstance(node, nir.LIF))
    assert hidden.metadata["reset"] == "first_spike_only" and hidden.metadata["reset_value"] == "-inf"
    assert float(hidden.tau[0]) == pytest.approx(10.0 / 20.0, rel=1e-5), "tau in steps: tau_mem / dt"

    phase, shape, steps = load_phase(ckpt)
    torch.manual_seed(0)
    x = (torch.rand(3, steps, *shape) < 0.2).float()
    expected, (spikes,) = hidden_spikes(phase, x)
    assert spikes.sum() > 0 and (spikes.sum(dim=1) <= 1).all(), "single spikes happen in the trained net"
    imported = read_nir(path, batch_size=3)
    got = imported(x.flatten(start_dim=2).reshape(3 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)
    assert [kinds[name] for name in plain_import_differences(path)] == ["LIF"], "plain sinabs misreads the LIF"
    plain = sinabs.from_nir(graph, batch_size=3)(x.flatten(start_dim=2).reshape(3 * steps, -1))
    plain = plain[0] if isinstance(plain, tuple) else plain
    assert not torch.allclose(plain.reshape(expected.shape), expected, atol=1e-3), "its neurons fire again"


def test_iaf_membrane_below_minus_threshold_reads_back_exactly_with_read_nir(tmp_path: Path) -> None:
    """sinabs's NIR import floors every IF membrane at -threshold; read_nir restores the exported floor (none)."""
    linear = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        linear.weight.fill_(1.0)
    net = nn.Sequential(linear, sl.IAF(spike_threshold=torch.tensor(1.0), min_v_mem=None))
    x = torch.tensor([-3.0, 1.5, 1.5, 1.5, 1.5, 0.0]).reshape(1, 6, 1)
    # no floor (multi-spike, subtract): V = -3, -1.5, 0, 1.5 (1 spike -> 0.5), 2 (2 spikes -> 0), 0
    expected = net(x)
    assert expected.flatten().tolist() == [0, 0, 0, 1, 2, 0]
    path = tmp_path / "iaf.nir"
    nir.write(str(path), nir_graph(net, features=1, steps=6))
    node = next(n for n in nir.read(str(path)).nodes.values() if isinstance(n, nir.IF))
    assert node.metadata["min_v_mem"] == "none", "the metadata survives nir.write / nir.read"

    exact = read_nir(path, batch_size=1)(x.reshape(6, 1))
    plain = sinabs.from_nir(nir.read(str(path)), batch_size=1)(x.reshape(6, 1))
    exact, plain = (out[0] if isinstance(out, tuple) else out for out in (exact, plain))
    assert torch.equal(exact.reshape(expected.shape), expected)
    # floored at -1: V = -1, 0.5, 2 (2 spikes -> 0), 1.5 (1 spike -> 0.5), 2 (2 spikes -> 0), 0
    assert plain.flatten().tolist() == [0, 0, 2, 1, 2, 0], "plain sinabs.from_nir clips the membrane"
    assert plain_import_differences(path) == [next(iter(n for n, m in nir.read(str(path)).nodes.items()
                                                        if isinstance(m, nir.IF)))]


def test_unknown_reset_in_the_metadata_is_refused_by_node(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(2, 2), sl.IAF())
    graph = nir_graph(net, features=2)
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.IF))
    graph.nodes[name].metadata["reset"] = "bounce"
    nir.write(str(tmp_path / "bad.nir"), graph)
    with pytest.raises(DataError, match=f"NIR node '{name}': unknown reset 'bounce'"):
        read_nir(tmp_path / "bad.nir", batch_size=1)
