"""experiment=shd_fastsnn|nmnist_fastsnn|fmnist_fastsnn: the paper's recipe composes and learns on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.config import QUIET, compose_cfg
from helpers.events import make_nmnist
from helpers.fmnist import make_fmnist

from brainlab.nets.readout_snn import LeakyReadout
from brainlab.train import run


@pytest.mark.parametrize(("name", "target", "lr", "epochs", "dt"), [
    ("shd_fastsnn", "shd", 1e-3, 200, 2.0), ("nmnist_fastsnn", "nmnist", 2e-4, 150, 1.0),
    ("fmnist_fastsnn", "fmnist", 2e-4, 150, 1.0),
])
def test_recipe_composes(tmp_path: Path, name: str, target: str, lr: float, epochs: int, dt: float) -> None:
    cfg = compose_cfg(tmp_path, [f"experiment={name}"])
    assert cfg.target == target and target in cfg.targets
    assert cfg.model.net.backend._target_ == "brainlab.snn.fastsnn.neuron"
    net = cfg.model.net
    assert (net.hidden_dim, net.readout, net.readout_tau, net.neuron.tau_mem, net.neuron.dt) == (200, "leaky", 20.0,
                                                                                                  10.0, dt)
    assert (cfg.model.optimizer.lr, cfg.data.batch_size, cfg.trainer.max_epochs) == (lr, 128, epochs)


def train(tmp_path: Path, overrides: list[str]) -> tuple[dict, dict]:
    cfg = compose_cfg(tmp_path / "run", [*overrides, *QUIET, f"paths.data_dir={tmp_path}"])
    metrics = run(cfg)
    rows = {r["id"]: r for r in json.loads((tmp_path / "run" / "targets.json").read_text())}
    return metrics, rows


def test_fmnist_fastsnn_learns_on_fixture_idx_files(tmp_path: Path) -> None:
    root = make_fmnist(tmp_path / "fm", train=48, test=16)
    metrics, rows = train(tmp_path, [
        "experiment=fmnist_fastsnn", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.n_time_bins=20", "data.val_fraction=0.25", "model.net.hidden_dim=32", "model.optimizer.lr=1e-2",
        "trainer.max_epochs=3",
    ])
    assert metrics["test/acc"] > 0.5, f"chance is 0.25, got {metrics['test/acc']}"
    assert 0 < metrics["test/rate/mean"] <= 1 / 20, "single spike: at most one per neuron over 20 steps"
    assert rows["fmnist"]["status"] == "not measured", "fixture numbers are never reported as F-MNIST's"


def test_nmnist_fastsnn_learns_on_fixture_bin_files(tmp_path: Path) -> None:
    root = make_nmnist(tmp_path / "nm", train=8, test=4, events=400)
    metrics, rows = train(tmp_path, [
        "experiment=nmnist_fastsnn", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.n_time_bins=15", "data.transform.transforms.0.time_window=20000", "model.net.neuron.dt=20.0",
        "data.val_fraction=0.25", "model.net.hidden_dim=32", "model.optimizer.lr=1e-2", "trainer.max_epochs=4",
    ])
    assert metrics["test/acc"] > 0.5, f"chance is 0.25, got {metrics['test/acc']}"
    assert rows["nmnist"]["status"] == "not measured"


def test_leaky_readout_is_in_the_recipe_nets(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = compose_cfg(tmp_path, ["experiment=fmnist_fastsnn", "model.net.hidden_dim=8"])
    net = instantiate(cfg.model.net, _convert_="all")
    assert isinstance(net.layers[-1], LeakyReadout) and net.layers[-1].dt == 1.0
    cfg = compose_cfg(tmp_path, ["experiment=fmnist_fastsnn", "model.net.readout=linear"])
    assert not any(isinstance(m, LeakyReadout) for m in instantiate(cfg.model.net, _convert_="all").modules())
