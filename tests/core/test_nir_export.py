"""NIR export of every backend's plain IAF/LIF layers: exact round trips through sinabs's own NIR import."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest
import sinabs
import sinabs.layers as sl
import torch
from conftest import TINY, compose_cfg
from torch import nn

from brainlab.errors import ConfigError
from brainlab.export import export_nir, fold_input_scaling, load_phase, to_sinabs
from brainlab.snn.exodus_backend import ExodusNeuron
from brainlab.snn.fused import neuron as fused_neuron
from brainlab.train import run

LIF = ["model.net.neuron.kind=lif", "++model.net.neuron.tau_mem=4.0"]


def round_trip(ckpt: Path, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(the trained net's output, the output of its NIR file read back by sinabs) on the same random spikes."""
    imported = sinabs.from_nir(nir.read(str(export_nir(ckpt))), batch_size=batch)
    phase, shape, steps = load_phase(ckpt)
    torch.manual_seed(0)
    x = (torch.rand(batch, steps, *shape) < 0.2).float()
    phase.reset_states()
    expected = phase(x)
    got = imported(x.flatten(start_dim=2).reshape(batch * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    return expected, got.reshape(expected.shape)


@pytest.mark.parametrize("backend", ["sinabs", "fused"])
def test_trained_lif_net_reads_back_with_the_same_spikes(tmp_path: Path, backend: str) -> None:
    cfg = compose_cfg(tmp_path / backend, [*TINY, *LIF, f"backend={backend}", "trainer.limit_train_batches=2",
                                           "test=false"])
    run(cfg)
    expected, got = round_trip(tmp_path / backend / "checkpoints" / "last.ckpt")
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


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


def test_layers_without_a_nir_equivalent_are_refused_by_name() -> None:
    net = nn.Sequential(nn.Linear(4, 3), sl.LIFRecurrent(tau_mem=5.0, rec_connect=nn.Linear(3, 3)))
    with pytest.raises(ConfigError, match="no NIR equivalent"):
        to_sinabs(net)
    kinds = (dict(kind="lif", tau_mem=5.0, recurrent=True, features=3), dict(kind="alif", tau_mem=5.0, tau_adapt=20.0))
    for neuron in kinds:
        layer = fused_neuron(**neuron)
        with pytest.raises(ConfigError, match="no NIR equivalent"):
            to_sinabs(nn.Sequential(nn.Linear(4, 3), layer))


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
