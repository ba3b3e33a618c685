"""The FSDP recipe's machinery on two CPU processes under torchrun (gloo): a net built on the meta device and
materialised by FSDP, per-block FSDP units, activation checkpointing, HTM permanences identical on every rank,
sharded checkpoints every N steps, test after fit, and a resume that restores exactly the state the uninterrupted
run had. GPU throughput and memory: the `gpu` test in `test_brain_ai_train.py` and `python -m brainlab.bench scale`
on a GPU machine."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[2]
RUN = [
    "experiment=brain_ai", "preset=tiny", "trainer=torchrun", "trainer.accelerator=cpu",
    "trainer.strategy._target_=gloo_fsdp.GlooFSDPStrategy", "trainer.precision=32-true", "trainer.max_epochs=2",
    "model.meta_init=true",  # the large presets' way: built on the meta device, FSDP materialises unit by unit
    "data.samples_per_class=16", "data.test_samples_per_class=4", "callbacks.progress_bar=null", "logger=csv",
    "callbacks.step_checkpoint.every_n_train_steps=2", "trainer.enable_model_summary=false",
    "+callbacks.fsdp_probe._target_=gloo_fsdp.FSDPProbe",
]

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


def torchrun(out: Path, *overrides: str) -> dict[int, dict]:
    """`train.py` on 2 CPU processes; returns each rank's probe record."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "train.py",
           *RUN, f"paths.output_dir={out}", f"+callbacks.fsdp_probe.out_dir={out}/probe",
           f"hydra.run.dir={out}/hydra/rank${{oc.env:RANK}}", *overrides]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {r: json.loads((out / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)}


def epoch_losses(out: Path) -> list[float]:
    rows = csv.DictReader((out / "csv" / "metrics.csv").open())
    return [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]


def test_fsdp_recipe_on_two_cpu_processes(tmp_path: Path) -> None:
    first = torchrun(tmp_path / "run")
    out = tmp_path / "run"
    for probe in first.values():  # one unit per block; recomputation on the transformer-style blocks only
        assert {"Block", "CrossBlock", "Hop", "SpikingLayer", "Engram", "DecisionHeads"} <= set(probe["fsdp_units"])
        assert {"Block", "CrossBlock", "Hop"} <= set(probe["checkpointed"])
        assert "SpikingLayer" not in probe["checkpointed"]
    # materialised by FSDP through reset_parameters: permanences uniform around `connected` in each potential pool
    assert first[0]["permanence"]["min"] == -1 and 4000 <= first[0]["permanence"]["max"] <= 6000
    assert 0.75 < first[0]["permanence"]["potential"] < 0.85  # potential_pct 0.8
    steps = first[0]["steps"]
    assert set(steps) == {"0", "1", "2", "3"}  # 64 samples - val split, 2 ranks x batch 16: 2 steps an epoch
    # the HTM rule's statistics are all-reduced: every rank holds the same permanences, and they learn
    assert all(first[0]["steps"][s]["htm"] == first[1]["steps"][s]["htm"] for s in steps)
    assert len({steps[s]["htm"] for s in steps}) == len(steps)
    assert first[0]["steps"]["1"]["params"] != first[1]["steps"]["1"]["params"]  # each rank holds its shard
    losses = epoch_losses(out)
    assert len(losses) == 2 and losses[1] < losses[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test/acc" in metrics and "test/rate/net.snn_core.layers.0.neuron" in metrics  # tested after the fit

    ckpt = out / "checkpoints" / "steps" / "step0000002.ckpt"  # sharded: a directory, a shard per rank
    assert ckpt.is_dir() and {p.name for p in ckpt.glob("__*_0.distcp")} == {"__0_0.distcp", "__1_0.distcp"}
    resumed = torchrun(tmp_path / "resumed", f"ckpt_path={ckpt}")
    for rank in (0, 1):  # weights, optimizer state, lr schedule and HTM permanences as they were at step 2
        assert set(resumed[rank]["steps"]) == {"2", "3"}
        assert resumed[rank]["steps"]["2"] == first[rank]["steps"]["2"]
