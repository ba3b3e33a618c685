"""Neuromorphic metrics against hand counts, media files, W&B media, and the NIR round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nir
import pytest
import sinabs
import torch
from conftest import TINY, compose_cfg
from PIL import Image
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.export import export_nir, load_phase, main
from brainlab.metrics.neuromorphic import connection_sparsity, count_costs, footprint_bytes
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
    x[1, 1] = torch.tensor([0, 2.0, 0, 1])  # a double spike + 1: 3 accumulating events
    with count_costs(net) as counts:
        out = net(x)
    # layer 1: 5 input spikes x fan-out 3; IAF: sample 0 fires neurons 0 and 2 at t0, sample 1 neuron 1 at t1
    # layer 2: 3 output spikes x fan-out 2
    assert counts.samples == 2
    assert counts.synops == 5 * 3 + 3 * 2
    assert counts.macs == 0
    summary = counts.summary(e_ac_pj=1.0, e_mac_pj=10.0)
    assert summary["synops"] == pytest.approx(21 / 2)
    assert summary["activation_sparsity"] == pytest.approx(1 - 3 / (2 * 2 * 3))
    assert summary["energy_uj"] == pytest.approx(21 / 2 * 1.0 * 1e-6)
    assert out.shape == (2, 2, 2)

    real = torch.full((2, 2, 4), 0.25)  # real-valued input: dense MACs for layer 1 (2*2 rows x 4 x 3)
    net[1].reset_states()
    with count_costs(net) as counts:
        net(real)
    assert counts.macs == 2 * 2 * 4 * 3
    assert counts.summary(1.0, 10.0)["energy_uj"] == pytest.approx((counts.synops + 10 * 48) / 2 * 1e-6)


def test_connection_sparsity_and_footprint() -> None:
    net = hand_net()
    assert connection_sparsity(net) == pytest.approx((12 - 3) / (12 + 6))
    # 18 float32 weights + the IAF threshold; the membrane state is still empty
    assert footprint_bytes(net) == (18 + 1) * 4
    net(torch.zeros(2, 1, 4))  # state of 2 x 3 membranes now held
    assert footprint_bytes(net) == (18 + 1 + 6) * 4


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("snn") / "run"
    cfg = compose_cfg(out, [*TINY, "logger=wandb", "trainer.limit_train_batches=3", "trainer.max_epochs=2"])
    os.environ["WANDB_SILENT"] = "true"
    run(cfg)
    close_loggers()  # as train.py's main does: W&B's files are complete afterwards
    return out


def test_run_reports_neuromorphic_metrics_beside_accuracy(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in ("test/synops", "test/macs", "test/energy_uj", "test/activation_sparsity", "test/footprint_bytes"):
        assert key in metrics
    assert metrics["test/synops"] > 0
    assert 0 < metrics["test/activation_sparsity"] < 1
    assert metrics["test/activation_sparsity"] == pytest.approx(1 - metrics["test/rate/mean"], abs=0.05)
    table = (trained_run / "targets.md").read_text()
    assert "| synthetic |" in table and "### neuromorphic.md" in table and "SynOps" in table


def test_media_files_are_images_of_the_right_size(trained_run: Path) -> None:
    for name in ("raster", "confusion_matrix", "firing_rates"):
        path = trained_run / "media" / f"{name}.png"
        assert path.stat().st_size > 1000
        with Image.open(path) as image:
            assert image.size == (800, 600)


def test_wandb_offline_run_holds_the_media(trained_run: Path) -> None:
    (wandb_run,) = list((trained_run / "wandb").glob("offline-run-*"))
    images = list((wandb_run / "files" / "media" / "images").rglob("*.png"))
    assert len(images) >= 3 and all(p.stat().st_size > 1000 for p in images)
    tables = list((wandb_run / "files" / "media" / "table").rglob("*.json"))
    assert tables, "the target table is logged as a W&B Table"


def test_nir_round_trip_gives_the_same_spikes(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    path = export_nir(ckpt, tmp_path / "net.nir")
    graph = nir.read(str(path))
    imported = sinabs.from_nir(graph, batch_size=3)
    phase, shape, steps = load_phase(ckpt)
    x = (torch.rand(3, steps, *shape) < 0.1).float()
    phase.reset_states()
    expected = phase(x)
    got = imported(x.flatten(start_dim=2).reshape(3 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected)
    with pytest.raises(ConfigError, match="already exists; nothing was overwritten"):
        export_nir(ckpt, path)


def test_export_cli_refuses_bad_arguments(capsys) -> None:
    assert main(["format=onnx", "ckpt_path=x.ckpt"]) == 2
    assert "format='onnx' is not supported" in capsys.readouterr().err


def test_fused_backend_exports_to_the_same_spikes(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path / "fused", [*TINY, "backend=fused", "trainer.limit_train_batches=2"])
    run(cfg)
    ckpt = tmp_path / "fused" / "checkpoints" / "last.ckpt"
    imported = sinabs.from_nir(nir.read(str(export_nir(ckpt))), batch_size=2)
    phase, shape, steps = load_phase(ckpt)
    x = (torch.rand(2, steps, *shape) < 0.2).float()
    phase.reset_states()
    expected = phase(x)
    got = imported(x.flatten(start_dim=2).reshape(2 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)


def test_fastsnn_export_cli_points_to_read_nir(tmp_path: Path, capsys) -> None:
    from brainlab.export import read_nir

    cfg = compose_cfg(tmp_path / "fast", [*TINY, "backend=fastsnn", "trainer.limit_train_batches=1", "test=false"])
    run(cfg)
    ckpt = tmp_path / "fast" / "checkpoints" / "last.ckpt"
    assert main([f"ckpt_path={ckpt}", f"output={tmp_path / 'fast.nir'}"]) == 0
    out = capsys.readouterr().out
    assert "brainlab.export.read_nir" in out and "plain sinabs.from_nir ignores" in out
    phase, shape, steps = load_phase(ckpt)
    x = (torch.rand(2, steps, *shape) < 0.2).float()
    spikes: list[torch.Tensor] = []
    for layer in phase.net.layers[1::2]:  # Linear, single-spike layer, Linear, single-spike layer, Linear
        layer.register_forward_hook(lambda _m, _i, out: spikes.append(out))
    phase.reset_states()
    expected = phase(x)
    assert spikes[0].sum() > 0 and max(s.sum(dim=1).max() for s in spikes) == 1, "single spikes happen"
    got = read_nir(tmp_path / "fast.nir", batch_size=2)(x.flatten(start_dim=2).reshape(2 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)
