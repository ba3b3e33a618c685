"""An export view as a NIR graph: recurrent layers as subgraphs with the recurrent weight as an edge, a synaptic
current as CubaLIF, the neuron semantics in each node's metadata."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest
import torch
from helpers.export import round_trip, write_nir
from torch import nn

from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.fused import neuron as fused_neuron
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron

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
    path = write_nir(net, tmp_path / "rec.nir")
    round_trip(net, path, x).assert_same(atol=1e-5)
    sub = next(node for node in nir.read(str(path)).nodes.values() if isinstance(node, nir.NIRGraph))
    assert ("neuron", "w_rec") in sub.edges and ("w_rec", "neuron") in sub.edges


def test_synaptic_current_exports_as_cuba_lif_with_metadata(tmp_path: Path) -> None:
    """`model.net.neuron.tau_syn`: each hidden LIF is a CubaLIF node with its synaptic and membrane taus."""
    torch.manual_seed(8)
    net = FeedForwardSNN([16], 4, sinabs_neuron, hidden_dim=16, n_hidden=2,
                         neuron=dict(kind="lif", tau_mem=4.0, tau_syn=3.0, spike_threshold=0.05))
    path = write_nir(net, tmp_path / "cuba.nir")
    neurons = [node for node in nir.read(str(path)).nodes.values() if isinstance(node, nir.CubaLIF)]
    assert len(neurons) == 2
    assert float(neurons[0].tau_syn[0]) == pytest.approx(3.0)
    assert float(neurons[0].tau_mem[0]) == pytest.approx(4.0, rel=0.05)
    assert neurons[0].metadata["neuron"] == "LIF" and neurons[0].metadata["reset"] == "MembraneSubtract"
    round_trip(net, path, (torch.rand(2, 30, 16) < 0.3).float() * 2).assert_same(atol=1e-5)
