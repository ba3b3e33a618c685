"""Neuromorphic metrics against hand counts, media files, W&B media, and the NIR round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from helpers.config import compose_cfg, tiny
from PIL import Image
from torch import nn

from brainlab.metrics.neuromorphic import (
    connection_sparsity,
    count_costs,
    dense_ops,
    footprint_bytes,
    layer_ops,
    measure,
)
from brainlab.snn.sinabs_backend import neuron
from brainlab.train import close_loggers, run


def hand_net() -> nn.Sequential:
    """Linear(4,3) with weight 1.5 on the diagonal -> IAF (threshold 1) -> Linear(3,2)."""
    first, last = nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        first.weight.zero_()
        first.weight[0, 0] = first.weight[1, 1] = first.weight[2, 2] = 1.5
        last.weight.fill_(0.5)
    return nn.Sequential(first, neuron(kind="iaf", reset="zero", spike_fn="single"), last)


def test_synops_macs_and_sparsity_match_hand_counts_with_batch_of_two() -> None:
    net = hand_net()
    x = torch.zeros(2, 2, 4)  # (batch, time, features)
    x[0, 0] = torch.tensor([1.0, 0, 1, 0])  # 2 input spikes
    x[1, 1] = torch.tensor([0, 2.0, 0, 1])  # a double spike + 1
    with count_costs(net) as counts:
        out = net(x)
    summary = counts.summary(e_ac_pj=1.0, e_mac_pj=10.0)
    # layer 1 sees a 2: the whole call counts as MACs (NeuroBench's rule). Non-zero weights: the diagonal (0,0),
    # (1,1), (2,2): sample 0 inputs 0 and 2 -> 2 pairs, sample 1 inputs 1 and 3 -> 1 pair (input 3 has no synapse).
    # Spike-count weighted: 1 + 1 + 2 x 1 = 4. IAF: sample 0 fires neurons 0 and 2 at t0, sample 1 neuron 1 at t1.
    # Layer 2: 3 binary spikes x 2 non-zero synapses = 6 accumulates.
    assert counts.samples == 2
    assert summary["macs"] == pytest.approx(3 / 2)
    assert summary["synops"] == pytest.approx(6 / 2)
    assert summary["synops_spike_count"] == pytest.approx((4 + 6) / 2)
    assert summary["dense_ops"] == pytest.approx((2 * 2 * 4 * 3 + 2 * 2 * 3 * 2) / 2)
    assert summary["membrane_updates"] == pytest.approx(2 * 3)  # 3 neurons x 2 steps per sample
    assert summary["activation_sparsity"] == pytest.approx(1 - 3 / (2 * 2 * 3))
    assert summary["energy_uj"] == pytest.approx((3 * 1.0 + 1.5 * 10.0) * 1e-6)
    assert out.shape == (2, 2, 2)

    real = torch.full((2, 2, 4), 0.25)  # real-valued input: effective MACs skip the 9 zero weights of layer 1
    net[1].reset_states()
    with count_costs(net) as counts:
        net(real)
    summary = counts.summary(1.0, 10.0)
    assert summary["macs"] == pytest.approx(2 * 2 * 3 / 2)
    assert summary["dense_ops"] == pytest.approx(36)


def test_conv_counts_respect_stride_padding_groups_and_dilation() -> None:
    conv = nn.Conv1d(1, 1, 3, stride=2, padding=1, bias=False)
    x = torch.zeros(1, 1, 8)
    x[..., [0, 1, 2, 7]] = 1  # windows (-1..1) (1..3) (3..5) (5..7) see 2 + 2 + 0 + 1 spike-synapse pairs
    assert layer_ops(conv, x) == (5.0, 5.0)
    assert dense_ops(conv, x.shape) == 2 + 3 + 3 + 3  # the first window overlaps the zero padding
    grouped = nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False)
    with torch.no_grad():
        grouped.weight.fill_(1.0)
    x = torch.zeros(1, 4, 5, 5)
    x[0, 0, 2, 2] = 1  # one spike in group 0: reaches 3 output channels x 9 positions
    assert layer_ops(grouped, x)[0] == 3 * 9
    with torch.no_grad():
        grouped.weight[0] = 0  # output channel 0 pruned: its synapses are not operations
    assert layer_ops(grouped, x)[0] == 2 * 9


def test_silent_and_saturated_layers_are_warned_about() -> None:
    net = hand_net()
    with torch.no_grad():
        net[0].weight.zero_()
    with pytest.warns(UserWarning, match=r"spiking layer 1 is silent"):
        summary = measure(net, [torch.ones(2, 3, 4)])
    assert summary["silent_layers"] == ["1"] and summary["saturated_layers"] == []
    with torch.no_grad():
        net[0].weight.fill_(5.0)
    with pytest.warns(UserWarning, match=r"spiking layer 1 is saturated"):
        summary = measure(net, [(torch.ones(2, 3, 4), torch.zeros(2))])  # (inputs, targets) batches too
    assert summary["saturated_layers"] == ["1"] and summary["samples"] == 2


def test_connection_sparsity_and_footprint() -> None:
    net = hand_net()
    assert connection_sparsity(net) == pytest.approx((12 - 3) / (12 + 6))
    # 18 float32 weights + the IAF threshold; neuron state is never counted, whatever the batch size
    assert footprint_bytes(net) == (18 + 1) * 4
    net(torch.zeros(2, 1, 4))  # state of 2 x 3 membranes now held
    assert footprint_bytes(net) == (18 + 1) * 4
    net[1].reset_states()
    net(torch.zeros(5, 1, 4))
    assert footprint_bytes(net) == (18 + 1) * 4


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("snn") / "run"
    cfg = compose_cfg(out, [*tiny("snn_media", "neuromorphic"), "logger=wandb", "trainer.limit_train_batches=3",
                            "trainer.max_epochs=2"])
    os.environ["WANDB_SILENT"] = "true"
    run(cfg)
    close_loggers()  # as train.py's main does: W&B's files are complete afterwards
    return out


def test_run_reports_neuromorphic_metrics_beside_accuracy(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in ("test/synops", "test/macs", "test/dense_ops", "test/energy_uj", "test/activation_sparsity",
                "test/connection_sparsity", "test/footprint_bytes", "test/membrane_updates"):
        assert key in metrics
    assert metrics["test/synops"] + metrics["test/macs"] > 0
    assert metrics["test/dense_ops"] >= metrics["test/synops"] + metrics["test/macs"]
    assert 0 < metrics["test/activation_sparsity"] < 1
    assert metrics["test/activation_sparsity"] == pytest.approx(1 - metrics["test/rate/mean"], abs=0.05)
    table = (trained_run / "targets.md").read_text()
    assert "| synthetic |" in table and "### neuromorphic.md" in table and "SynOps" in table


def test_media_files_are_images_of_the_right_size(trained_run: Path) -> None:
    for name in ("raster", "confusion_matrix", "firing_rates"):
        path = trained_run / "media" / f"{name}.png"
        assert path.stat().st_size > 1000
        with Image.open(path) as image:
            assert image.size[0] == 800 and image.size[1] >= 200  # fixed width; height grows with the layers


def test_wandb_offline_run_holds_the_media(trained_run: Path) -> None:
    (wandb_run,) = list((trained_run / "wandb").glob("offline-run-*"))
    images = list((wandb_run / "files" / "media" / "images").rglob("*.png"))
    assert len(images) >= 3 and all(p.stat().st_size > 1000 for p in images)
    tables = list((wandb_run / "files" / "media" / "table").rglob("*.json"))
    assert tables, "the target table is logged as a W&B Table"


