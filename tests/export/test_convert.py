"""A net as its export view: every backend's spiking layers as plain sinabs layers with the same spikes, LIF input
scaling and batch norm folded, conv and SEW-ResNet layouts read back with the same spikes; what NIR 1.0 cannot
express is refused in one line naming the layer."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest
import sinabs.layers as sl
import torch
from helpers.export import round_trip, write_nir
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.export import SilenceAfterSpike, export_view, fold_input_scaling, to_sinabs
from brainlab.nets.conv_snn import ConvSNN
from brainlab.nets.readout_snn import LeakyReadout
from brainlab.nets.sew_resnet import SEWResNet
from brainlab.nets.spiking_vit import SpikingViT
from brainlab.snn.exodus_backend import ExodusNeuron
from brainlab.snn.fastsnn import FastSNNNeuron
from brainlab.snn.fused import neuron as fused_neuron
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron


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


class SinabsSubclassLIF(sl.LIF):
    """Stands in for a sinabs-exodus layer on CPU: exodus's IAF/LIF subclass sinabs's and keep its arguments."""


def test_exodus_style_layers_convert_to_plain_sinabs_layers() -> None:
    torch.manual_seed(2)
    inner = SinabsSubclassLIF(tau_mem=torch.tensor(6.0), spike_threshold=torch.tensor(0.7))
    net = nn.Sequential(nn.Linear(4, 3), ExodusNeuron(inner))
    converted = to_sinabs(net)
    assert type(converted[1]) is sl.LIF
    assert float(converted[1].tau_mem.detach()) == 6.0
    assert float(converted[1].spike_threshold.detach()) == pytest.approx(0.7)
    x = torch.rand(2, 10, 4) * 3
    torch.testing.assert_close(converted(x), inner(net[0](x)))


def test_adaptive_layers_are_refused_naming_the_fixed_nir_threshold() -> None:
    net = nn.Sequential(nn.Linear(4, 3), sl.ALIF(tau_mem=5.0, tau_adapt=20.0))
    with pytest.raises(ConfigError, match="no NIR equivalent.*fixed threshold"):
        to_sinabs(net)
    layer = fused_neuron(kind="alif", tau_mem=5.0, tau_adapt=20.0)
    with pytest.raises(ConfigError, match="no NIR equivalent.*fixed threshold"):
        to_sinabs(nn.Sequential(nn.Linear(4, 3), layer))


def test_conv_snn_reads_back_with_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(6)
    for make in (sinabs_neuron, fused_neuron):
        net = ConvSNN([2, 16, 16], 4, make, channels=(4, 8), hidden_dim=16, input_pool=2,
                      neuron=dict(kind="lif", tau_mem=5.0, spike_threshold=0.05))
        x = (torch.rand(3, 10, 2, 16, 16) < 0.3).float()
        path = write_nir(net, tmp_path / f"conv-{make.__module__}.nir")
        round_trip(net, path, x).assert_same(atol=1e-5)
        kinds = {type(node).__name__ for node in nir.read(str(path)).nodes.values()}
        assert {"Conv2d", "AvgPool2d", "Flatten", "LIF", "Affine"} <= kinds


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
    path = write_nir(net, tmp_path / "sew.nir")
    round_trip(net, path, torch.rand(2, 3, 16, 16)).assert_same(atol=1e-4)
    graph = nir.read(str(path))
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
