"""The integrated model end to end: the tiny preset trains on CPU (loss falls), its record and target row;
the FSDP / torchrun / submitit configs compose; FSDP with activation checkpointing on a GPU (marked `gpu`)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.config import CONF, compose_cfg
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate

from brainlab.train import run

SMOKE = [
    "experiment=brain_ai", "preset=tiny", "data.samples_per_class=16", "data.test_samples_per_class=4",
    "trainer.max_epochs=3", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
    "callbacks.progress_bar=null", "trainer.enable_model_summary=false",
]


def test_tiny_preset_trains_and_its_loss_falls(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path / "run", [*SMOKE, "callbacks.throughput.window_size=2"])
    metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    losses = [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]
    assert len(losses) == 12  # 64 samples / batch 16 x 3 epochs
    rates = [float(r["train/device/samples_per_sec"]) for r in rows if r.get("train/device/samples_per_sec")]
    assert len(rates) >= 10 and min(rates) > 0  # Lightning's ThroughputMonitor, once its window has 2 steps
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    assert 0.0 < metrics["train/spike_rate"] < 1.0  # the SNN core spikes, but not everywhere
    table = {r["id"]: r for r in json.loads((out / "targets.json").read_text())}
    assert table["brain_ai_synthetic"]["status"] == "not measured"  # synthetic data is never a dataset result


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_tiny_preset_trains_in_bf16(tmp_path: Path, precision: str) -> None:
    """bf16 autocast, and bf16 weights (the spiking layers' float32 state meets bf16 weights there)."""
    cfg = compose_cfg(tmp_path / "run", [*SMOKE, f"trainer.precision={precision}", "trainer.max_epochs=1"])
    metrics = run(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss_epoch"])) and "test/acc" in metrics


def test_htm_permanences_learn_outside_the_optimizer(tmp_path: Path) -> None:
    """One training step moves the HTM permanences (its own rule), and they are no optimizer parameter."""
    cfg = compose_cfg(tmp_path / "run", SMOKE)
    phase = instantiate(cfg.model, _recursive_=False)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    htm = phase.net.htm
    before = htm.permanence.clone()
    assert all(p is not htm.permanence for p in phase.parameters())
    batch = next(iter(dm.train_dataloader()))
    phase.reset_states()
    loss = torch.nn.functional.cross_entropy(phase(batch)["logits"], batch["label"])
    loss.backward()
    assert torch.equal(htm.permanence, before)  # backward never touches them
    phase.optimizer_step(0, 0, torch.optim.SGD(phase.parameters(), lr=0.0))
    assert not torch.equal(htm.permanence, before)
    assert int(htm.updates) == 1


def test_recipe_configs_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_cfg(tmp_path, ["experiment=brain_ai", "preset=1b", "trainer=fsdp", "trainer.precision=bf16-mixed"])
    assert cfg.model.optimizer.lr == 3e-4 and cfg.model.scheduler.warmup_steps == 2000
    assert cfg.model.scheduler.min_lr == pytest.approx(0.1 * cfg.model.optimizer.lr)
    assert cfg.callbacks.step_checkpoint.every_n_train_steps == 1000
    strategy = instantiate(cfg.trainer.strategy)
    from brainlab.nets.brain_ai.blocks import Block, CrossBlock

    assert strategy._state_dict_type == "sharded"
    assert {Block, CrossBlock} <= set(strategy.kwargs["auto_wrap_policy"]._module_classes)
    assert Block in strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes
    monkeypatch.setenv("GROUP_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    cfg = compose_cfg(tmp_path, ["experiment=brain_ai", "preset=7b", "trainer=torchrun"])
    assert (cfg.trainer.num_nodes, cfg.trainer.devices) == (2, 8)
    assert cfg.trainer.strategy._target_.endswith("FSDPStrategy")


@pytest.mark.parametrize("launcher", ["slurm", "slurm_local"])
def test_submitit_launchers_compose(launcher: str, tmp_path: Path) -> None:
    overrides = [f"hydra/launcher={launcher}", "experiment=brain_ai", "preset=7b", "trainer=fsdp",
                 "trainer.num_nodes=2", "trainer.devices=8", f"paths.output_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launch = cfg.hydra.launcher
    assert launch._target_.startswith("hydra_plugins.hydra_submitit_launcher.submitit_launcher.")
    if launcher == "slurm":
        assert (launch.nodes, launch.tasks_per_node, launch.gpus_per_node) == (2, 8, 8)
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    launcher_cls = get_class(launch._target_)  # the installed plugin provides it
    assert issubclass(launcher_cls, Launcher)
    assert launcher_cls in Plugins.instance().discover(Launcher)


@pytest.mark.slow  # ~20 s of submitit polling: `pytest -m slow`
def test_submitit_local_launcher_runs_a_job(tmp_path: Path) -> None:
    """The SLURM path's plugin, with its local executor: the sweep's job runs as a submitit job."""
    cmd = [sys.executable, "train.py", "-m", "hydra/launcher=slurm_local", "experiment=brain_ai", "preset=tiny",
           "data.samples_per_class=8", "data.test_samples_per_class=2", "trainer.max_epochs=1", "logger=csv",
           "callbacks.progress_bar=null", f"hydra.sweep.dir={tmp_path}", "seed=1"]
    done = subprocess.run(cmd, cwd=CONF.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test/acc" in json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert len([p for p in (tmp_path / ".submitit").iterdir() if p.name != "%j"]) == 1  # the submitit job's folder


@pytest.mark.gpu
def test_fsdp_bf16_activation_checkpointing_on_gpu(tmp_path: Path) -> None:
    """The 1B recipe's machinery on a GPU, at tiny size: built on the meta device, FSDP per block, bf16,
    checkpointing, sharded checkpoints written every N steps, and a resume from one (speed and memory:
    `python -m brainlab.bench scale` on the GPU machine)."""
    n = torch.cuda.device_count()
    base = [*SMOKE, "trainer=fsdp", f"trainer.devices={n}", "trainer.precision=bf16-mixed", "model.meta_init=true",
            "callbacks.step_checkpoint.every_n_train_steps=4", "logger=csv"]
    cfg = compose_cfg(tmp_path / "run", base)
    run(cfg)
    steps = sorted((Path(cfg.paths.output_dir) / "checkpoints" / "steps").glob("step*"))
    assert steps and steps[0].is_dir()  # sharded: one directory per checkpoint
    resumed = compose_cfg(tmp_path / "resumed", [*base, "trainer.max_epochs=4", f"ckpt_path={steps[-1]}"])
    assert os.path.isdir(resumed.ckpt_path)
    run(resumed)


def test_meta_init_builds_shapes_then_configure_model_gives_storage(tmp_path: Path) -> None:
    """`model.meta_init=true` (the large presets): no memory until configure_model, then a working net."""
    from brainlab.nets.brain_ai.model import is_on_meta
    from brainlab.snn.factory import spiking_layers

    cfg = compose_cfg(tmp_path / "run", [*SMOKE, "model.meta_init=true"])
    phase = instantiate(cfg.model, _recursive_=False)
    assert is_on_meta(phase.net)
    phase.configure_model()
    assert not is_on_meta(phase.net)
    assert all(float(m.spike_threshold) == 1.0 for _, m in spiking_layers(phase.net))
    perm = phase.net.htm.permanence
    assert ((perm == -1) | ((perm >= 0) & (perm <= 10_000))).all() and (perm >= 0).float().mean() > 0.5
    assert torch.all(phase.net.meta.modulator[-1].weight == 0)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    phase.reset_states()
    out = phase(batch)
    assert torch.isfinite(out["logits"]).all() and torch.isfinite(out["free_energy"]).all()


def test_maml_inner_loop_in_a_training_step(tmp_path: Path) -> None:
    """`model.meta_inner_steps=1`: the fast weights adapt on the support half, the query half is scored with
    them, and the outer gradient reaches the adapter's initial weights and the encoders."""
    cfg = compose_cfg(tmp_path / "run", [*SMOKE, "model.meta_inner_steps=1", "model.meta_first_order=false"])
    phase = instantiate(cfg.model, _recursive_=False)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    phase.reset_states()
    out, target = phase.maml_forward(batch)
    assert out["logits"].shape[0] == target.shape[0] == batch["label"].shape[0] // 2
    torch.nn.functional.cross_entropy(out["logits"], target).backward()
    assert phase.net.meta.adapter[1].weight.grad.abs().sum() > 0
    assert phase.net.vision.patch.weight.grad.abs().sum() > 0
