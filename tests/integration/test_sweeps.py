"""Sweeps and crashes as a user meets them (`train.py`): an Optuna sweep with a failed trial, its best trial and its
resume (train.py's entry in-process); a grid multirun with failed jobs, DDP jobs and W&B runs, and kill -9 (in a
subprocess: the exit status, spawned processes and the kill are what they test). The sweeper's own cases (stops,
stale trials, the old JSON journal) with a stand-in launcher: test_sweeps_failures.py."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers.config import FAST, ROOT, TINY, compose_cfg
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from brainlab.train import run

ENV = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
HIDDEN_0 = "model.net.hidden_dim must be a positive integer, got 0"


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600
    )


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def train_in_process(*args: str) -> int:
    """`python train.py <args>` run in this process (runpy, as the interpreter runs the script; Hydra's logging set-up
    left out, so pytest's stays): the exit status."""
    argv = sys.argv
    sys.argv = [str(ROOT / "train.py"), *args, "hydra/job_logging=none", "hydra/hydra_logging=none"]
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()


def test_optuna_sweep_records_a_failed_trial_returns_the_best_and_resumes(tmp_path: Path, monkeypatch, capsys) -> None:
    """hidden_dim=choice(0,16,24), TPE's random start with seed 2 draws 24, 0, 16 (optuna 2.10): one failed trial,
    two that complete; the resume (seed 6) draws 0 again, which fails at once. In-process: train.py's own entry."""
    import optuna  # here only: its import is paid by the worker that runs this test, not by every collecting one

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    sweep = tmp_path / "optuna"
    fast = [o for o in FAST if not o.startswith("model.net.hidden_dim=")]  # a fixed value would win over the choice
    search = ["hparams_search=optuna", *fast, "trainer.limit_train_batches=1", "test=false",
              "hydra.sweeper.params=null", "model.net.hidden_dim=choice(0,16,24)", f"hydra.sweep.dir={sweep}"]
    assert train_in_process(*search, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=2") == 0
    err = capsys.readouterr().err
    assert f"1 of 3 jobs failed (sweep dir {sweep}):" in err and "the study records them as failed trials" in err
    study = optuna.load_study(study_name="train", storage=f"sqlite:///{sweep}/optuna.db")  # the default storage
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"], "seed 2 draws 24, 0, 16"
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert (results["n_trials"], results["n_complete"], results["n_failed"]) == (3, 2, 1)
    assert results["failed"] == [{"trial": 1, "job": 1, "params": {"model.net.hidden_dim": 0}, "error": HIDDEN_0}]
    assert (sweep / "1" / "error.txt").read_text().strip() == HIDDEN_0
    good = [job for job in job_dirs(sweep) if (job / "metrics.json").is_file()]
    values = [json.loads((job / "metrics.json").read_text())["val/acc_best"] for job in good]
    assert [t.value for t in study.trials if t.state.name == "COMPLETE"] == values, "the jobs' val/acc_best"
    assert results["best_value"] == max(values)
    best_overrides = [yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
                      for job, value in zip(good, values, strict=True) if value == max(values)]
    assert any(f"model.net.hidden_dim={results['best_params']['model.net.hidden_dim']}" in o for o in best_overrides)

    assert train_in_process(*search, "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler.seed=6", "resume=true") == 0
    assert [int(job.name) for job in job_dirs(sweep)] == [0, 1, 2, 3], "job 3 after jobs 0-2"
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert (results["n_trials"], results["n_failed"]) == (4, 2), "n_trials counts the total"
    assert results["failed"][-1] == {"trial": 3, "job": 3, "params": {"model.net.hidden_dim": 0}, "error": HIDDEN_0}
    assert results["best_value"] == max(values)


@pytest.mark.heavy
def test_a_grid_multirun_with_failed_jobs_ddp_jobs_and_wandb(tmp_path: Path) -> None:
    """Jobs (hidden_dim, trainer): (0, cpu) and (0, ddp) fail at setup, (16, cpu) runs, then (16, ddp) runs two
    spawned processes inside the same multirun; every job that ran is its own W&B run."""
    sweep = tmp_path / "sweep"
    overrides = ["model.net.hidden_dim=0,16", "trainer=cpu,ddp", "logger=wandb", "test=false",
                 f"hydra.sweep.dir={sweep}"]
    result = train("-m", *FAST, *overrides, cwd=tmp_path)
    assert result.returncode == 1, "a multirun with a failed job exits non-zero"
    assert f"2 of 4 jobs failed (sweep dir {sweep}):" in result.stderr
    assert f"  job 0 ({sweep / '0'}): {HIDDEN_0}" in result.stderr and f"  job 1 ({sweep / '1'}):" in result.stderr
    *failed, cpu, ddp = job_dirs(sweep)
    for job in failed:
        assert (job / "error.txt").read_text().strip() == HIDDEN_0
        assert "job failed" in (job / "train.log").read_text()
    assert "trainer=ddp" in yaml.safe_load((ddp / ".hydra" / "overrides.yaml").read_text())
    ids = set()
    for job in (cpu, ddp):
        metrics = json.loads((job / "metrics.json").read_text())
        assert "val/acc" in metrics and "train/loss_epoch" in metrics
        assert not (job / "error.txt").exists()
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, "every multirun job is its own W&B run"
        ids.add(runs[0].name.split("-")[-1])
    assert len(ids) == 2


@pytest.mark.heavy
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

    # the resume in-process (what runs after `python train.py ... ckpt_path=<newest>`)
    resumed = compose_cfg(tmp_path / "resumed", [*TINY, f"trainer.max_steps={saved_step + 3}", "trainer.max_epochs=-1",
                                                 f"ckpt_path={newest}", "test=false"])
    run(resumed)
    final = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == saved_step + 3, "the resumed run continued from the newest checkpoint"
