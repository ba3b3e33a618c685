"""The project's NIR reader: `read_nir` restores each neuron's reset, spike function and membrane floor from its
node metadata (which plain `sinabs.from_nir` ignores), and refuses metadata it does not know, naming the node."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest
import sinabs
import sinabs.layers as sl
import torch
from helpers.export import round_trip, write_nir
from torch import nn

from brainlab.core.errors import DataError
from brainlab.export import nir_graph, plain_import_differences, read_nir
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron


def test_single_spike_zero_reset_lif_reads_back_exactly_only_with_read_nir(tmp_path: Path) -> None:
    """sinabs's LIF import is multi-spike with a subtract reset; read_nir restores single-spike / zero reset."""
    torch.manual_seed(3)
    net = FeedForwardSNN([16], 4, sinabs_neuron, hidden_dim=16, n_hidden=2,
                         neuron=dict(kind="lif", tau_mem=4.0, spike_threshold=0.1, spike_fn="single", reset="zero"))
    path = write_nir(net, tmp_path / "lif.nir")
    result = round_trip(net, path, (torch.rand(3, 20, 16) < 0.3).float() * 2)
    result.assert_same(atol=1e-5)
    graph = nir.read(str(path))
    plain = sinabs.from_nir(graph, batch_size=3)(result.frames)
    plain = plain[0] if isinstance(plain, tuple) else plain
    assert not torch.allclose(plain.reshape(result.expected.shape), result.expected, atol=1e-3), \
        "plain sinabs.from_nir reads other neurons"
    lif = [name for name, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    assert {graph.nodes[name].metadata["reset"] for name in lif} == {"MembraneReset"}
    assert plain_import_differences(path) == lif


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
