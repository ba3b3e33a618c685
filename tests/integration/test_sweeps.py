"""Sweeps and crashes as a user meets them (subprocesses): Optuna, failed jobs, DDP in a multirun, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from helpers.config import FAST, ROOT, TINY

ENV = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600
    )


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def test_optuna_sweep_returns_the_best_trial(tmp_path: Path) -> None:
    sweep = tmp_path / "optuna"
    result = train(
        "hparams_search=optuna", *FAST, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=3",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(sweep)
    assert len(jobs) == 3
    values = [json.loads((job / "metrics.json").read_text())["val/acc_best"] for job in jobs]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(values)
    best_job = jobs[values.index(max(values))]
    overrides = yaml.safe_load((best_job / ".hydra" / "overrides.yaml").read_text())
    for key, value in best["best_params"].items():
        assert f"{key}={value}" in overrides


def test_failed_job_is_logged_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    overrides = ["model.net.hidden_dim=0,16,24", "logger=wandb", f"hydra.sweep.dir={sweep}"]
    result = train("-m", *FAST, *overrides, cwd=tmp_path)
    assert result.returncode == 1, "a multirun with a failed job exits non-zero"
    assert f"1 of 3 jobs failed (sweep dir {sweep}):" in result.stderr
    assert "  job 0 (" in result.stderr and "hidden_dim must be a positive integer, got 0" in result.stderr
    failed, *good = job_dirs(sweep)
    assert (failed / "error.txt").read_text().strip() == "model.net.hidden_dim must be a positive integer, got 0"
    assert "job failed" in (failed / "train.log").read_text()
    ids = set()
    for job in good:
        assert "test/acc" in json.loads((job / "metrics.json").read_text())
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, "every multirun job is its own W&B run"
        ids.add(runs[0].name.split("-")[-1])
    assert len(ids) == 2


def test_ddp_inside_a_multirun(tmp_path: Path) -> None:
    sweep = tmp_path / "ddp"
    result = train("-m", *FAST, "seed=1,2", "trainer=ddp", "test=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(sweep)
    assert len(jobs) == 2
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert "val/acc" in metrics and "train/loss_epoch" in metrics
        assert not (job / "error.txt").exists()


def test_kill_9_then_resume_loses_at_most_one_interval(tmp_path: Path) -> None:
    every = 3  # steps between checkpoints: one epoch of the TINY set (43 training samples, batch 16)
    run_dir = tmp_path / "killed"
    args = [*TINY, "trainer.max_epochs=50", f"callbacks.step_checkpoint.every_n_train_steps={every}",
            f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps_dir = run_dir / "checkpoints" / "steps"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and len(list(steps_dir.glob("step*.ckpt"))) < 3:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    checkpoints = sorted(steps_dir.glob("step*.ckpt"))
    assert len(checkpoints) >= 3, "training wrote periodic checkpoints before the kill"
    newest = checkpoints[-1]
    state = torch.load(newest, weights_only=True)  # intact after kill -9: written atomically
    saved_step = state["global_step"]
    assert saved_step % every == 0 and saved_step >= 3 * every
    assert not list(steps_dir.glob("*.tmp*")), "no half-written file is left behind"

    resumed_dir = tmp_path / "resumed"
    result = train(*TINY, f"trainer.max_steps={saved_step + 3}", "trainer.max_epochs=-1", f"ckpt_path={newest}",
                   f"hydra.run.dir={resumed_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    final = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == saved_step + 3, "the resumed run continued from the newest checkpoint"
