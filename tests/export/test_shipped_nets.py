"""A NIR round trip per shipped SNN net (issue 24): each experiment's net, trained briefly on its format-true
fixture (a few optimizer steps of the phase's own training step: every Linear/Conv weight moves), exported from
its checkpoint by `export_nir`, read back by the project's reader (`read_nir`) and run on a real fixture batch it
was not trained on.

Stated tolerances: every spike of every spiking layer is identical; the outputs are equal up to float32 rounding
(`FLOAT`: the fastsnn readout's blocked filter against the step recursion, a LIF's folded input scale; 0 for the
IAF nets) or, where batch norm was folded into its conv (SEW-ResNet), within `FOLDED`. What NIR cannot express
(ALIF, max pooling, the Spiking ViT, BrainAI, a non-SNN phase) is refused in one line: tests/export/test_main.py.
The session's shared `trained_run` (experiment=synthetic_snn's net, trained by `brainlab.train.run`) is the
Lightning-checkpoint round trip of test_main.py; the exodus backend (experiment=ssc_exodus, CUDA only) is its `gpu`
test. Nets are sized down (hidden/channel widths, time bins); layout, neurons and backend are the experiment's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nir
import pytest
import sinabs
import torch
from helpers.events import make_dvs_gesture, make_nmnist, make_shd, make_ssc
from helpers.export import node_kinds, round_trip, train_briefly
from helpers.fmnist import make_fmnist
from helpers.images import write_image_folder

from brainlab.export import export_nir, plain_import_differences

FLOAT = 1e-5  # no batch norm: float32 rounding (max seen 1.2e-6, on fmnist_fastsnn's readout)
FOLDED = 1e-4  # batch norm folded into the conv before it (SEW-ResNet)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny nets and batches: one torch thread is fastest


def shd(root: Path) -> Path:
    return make_shd(root, train=4, test=2, events=600)


SMALL = ["data.num_classes=4", "data.batch_size=8"]
SYNTHETIC = ["data.n_channels=16", "data.samples_per_class=4", "data.test_samples_per_class=2",
             "data.n_time_bins=10", "data.transform.transforms.0.time_window=50000", "model.net.hidden_dim=16"]
SHD = ["experiment=shd_snn", "data.transform.transforms.1.time_window=100000", "data.n_time_bins=10",
       "data.val_fraction=0.25", "model.net.hidden_dim=16"]
LIF = ["model.net.neuron.kind=lif", "++model.net.neuron.tau_mem=5.0", "model.net.neuron.spike_threshold=0.3"]


def fastsnn_checks(graph: nir.NIRGraph, path: Path, result) -> None:
    """The single-spike LIF's semantics ride in its metadata; plain sinabs.from_nir reads neurons that fire again."""
    hidden = next(node for node in graph.nodes.values() if isinstance(node, nir.LIF))
    assert hidden.metadata["reset"] == "first_spike_only" and hidden.metadata["reset_value"] == "-inf"
    assert float(hidden.tau[0]) == pytest.approx(10.0 / 20.0, rel=1e-5), "tau in steps: tau_mem / dt"
    (spikes,) = result.spikes
    assert (spikes.sum(dim=1) <= 1).all(), "single spikes"
    lif = [name for name, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    assert plain_import_differences(path) == lif
    batch = result.expected.shape[0]
    plain = sinabs.from_nir(graph, batch_size=batch)(result.frames)
    plain = plain[0] if isinstance(plain, tuple) else plain
    assert not torch.allclose(plain.reshape(result.expected.shape), result.expected, atol=1e-3)


def residual_sum(graph: nir.NIRGraph, path: Path, result) -> None:
    targets = [dst for _, dst in graph.edges]
    assert any(targets.count(name) == 2 for name in graph.nodes), "a residual sum: two edges into one node"


def recurrent_edges(graph: nir.NIRGraph, path: Path, result) -> None:
    subgraphs = [node for node in graph.nodes.values() if isinstance(node, nir.NIRGraph)]
    assert subgraphs and all({("neuron", "w_rec"), ("w_rec", "neuron")} <= set(g.edges) for g in subgraphs)


@dataclass
class Net:
    """A shipped net: its experiment's overrides (sized down), the fixture it trains on, the nodes its NIR file
    holds, its tolerance and any further check."""

    overrides: list[str]
    fixture: Callable[[Path], Path] | None
    kinds: set[str]
    atol: float = FLOAT
    check: Callable[..., None] | None = None


NETS = {
    # FeedForwardSNN (model=event_snn): IAF, LIF, recurrent LIF (sinabs), recurrent CubaLIF (fused)
    "shd_snn": Net(SHD, shd, {"Affine", "IF"}),
    "ssc_snn": Net(["experiment=ssc_snn", "data.transform.transforms.2.time_window=100000", "data.n_time_bins=10",
                    "model.net.hidden_dim=16"], lambda root: make_ssc(root, train=4, valid=2, test=2, events=600),
                   {"Affine", "IF"}),
    "nmnist_snn": Net(["experiment=nmnist_snn", "data.transform.transforms.0.time_window=30000",
                       "data.n_time_bins=10", "data.val_fraction=0.25", "model.net.hidden_dim=16"],
                      lambda root: make_nmnist(root, train=4, test=2), {"Affine", "IF"}),
    # LIF's input scaling (1 - alpha) is small: a lower threshold lets the fixture's few events fire it
    "synthetic_lif": Net(["experiment=synthetic_lif", *SYNTHETIC, "model.net.neuron.spike_threshold=0.1"], None,
                         {"Affine", "LIF"}),
    "shd_snn-recurrent-lif": Net([*SHD, *LIF, "++model.net.neuron.recurrent=true"], shd,
                                 {"NIRGraph", "LIF", "Linear"}, check=recurrent_edges),
    "shd_snn-fused-recurrent-cuba-lif": Net([*SHD, "backend=fused", *LIF, "++model.net.neuron.tau_syn=3.0",
                                             "++model.net.neuron.recurrent=true"], shd,
                                            {"NIRGraph", "CubaLIF", "Linear"}, check=recurrent_edges),
    # ReadoutSNN, backend=fastsnn: single-spike LIF and the leaky readout
    "shd_fastsnn": Net(["experiment=shd_fastsnn", "data.transform.transforms.1.time_window=100000",
                        "data.n_time_bins=10", "model.net.neuron.dt=20.0", "data.val_fraction=0.25",
                        "model.net.hidden_dim=16"], shd, {"Affine", "LIF", "LI"}, check=fastsnn_checks),
    "nmnist_fastsnn": Net(["experiment=nmnist_fastsnn", "data.n_time_bins=15",
                           "data.transform.transforms.0.time_window=20000", "model.net.neuron.dt=20.0",
                           "data.val_fraction=0.25", "model.net.neuron.spike_threshold=0.5",
                           "model.net.hidden_dim=16"],
                          lambda root: make_nmnist(root, train=4, test=2, events=400), {"Affine", "LIF", "LI"}),
    "fmnist_fastsnn": Net(["experiment=fmnist_fastsnn", "data.n_time_bins=20", "data.val_fraction=0.25",
                           "model.net.hidden_dim=16"], lambda root: make_fmnist(root, train=16, test=8),
                          {"Affine", "LIF", "LI"}),
    # ConvSNN (avg pooling)
    "dvs_gesture_snn": Net(["experiment=dvs_gesture_snn", "data.transform.transforms.1.time_window=600000",
                            "data.n_time_bins=5", "data.spatial_factor=0.125", "data.frame_size=16",
                            "model.net.channels=[4]", "model.net.input_pool=1", "model.net.hidden_dim=16"],
                           lambda root: make_dvs_gesture(root, users=2),
                           {"Conv2d", "AvgPool2d", "Flatten", "IF", "Affine"}),
    # SEW-ResNet (model=vision_snn, connect=add, small stem; the sew_resnet_tiny preset is this net): batch norm
    # folded
    "imagefolder_snn": Net(["experiment=imagefolder_snn", "data.num_classes=3", "data.image_size=16",
                            "model.net.layers=[1,1]", "model.net.channels=[8,16]", "model.net.time_steps=2",
                            "model.net.neuron.spike_threshold=0.25"],
                           lambda root: write_image_folder(root, {"train": 6, "val": 3}, size=16),
                           {"Conv2d", "IF", "AvgPool2d", "Flatten", "Affine"}, atol=FOLDED, check=residual_sum),
}


@pytest.mark.parametrize("name", list(NETS))
def test_shipped_net_trained_on_its_fixture_reads_back_with_the_same_spikes(name: str, tmp_path: Path) -> None:
    net = NETS[name]
    fixture = [f"data.root={net.fixture(tmp_path / 'data')}"] if net.fixture else []
    trained = train_briefly(tmp_path / "run", [*SMALL, *net.overrides, *fixture])
    path = export_nir(trained.ckpt)
    graph = nir.read(str(path))
    assert net.kinds <= node_kinds(graph), node_kinds(graph)
    result = round_trip(trained.phase, path, trained.batch)
    result.assert_same(atol=net.atol, rtol=net.atol)
    if net.check is not None:
        net.check(graph, path, result)
    if not plain_import_differences(path):  # sinabs's own import reads it the same where it can
        batch = result.expected.shape[0]
        plain = sinabs.from_nir(graph, batch_size=batch)(result.frames)
        plain = plain[0] if isinstance(plain, tuple) else plain
        torch.testing.assert_close(plain.reshape(result.expected.shape), result.expected, rtol=1e-4, atol=1e-4)
