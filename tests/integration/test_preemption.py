"""SIGTERM / Ctrl-C / submitit's requeue signal during training: `preempt.ckpt` at the step end, one line, 143 / 130,
and the resume from it (in-process: a callback raises the signal after the first step); under SLURM, Lightning's own
auto-requeue off. The same through a real submitit job (hydra/launcher=slurm_local): the slow test at the end."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from helpers.config import CONF, ROOT, TINY
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

import brainlab.train as train_module
from brainlab.callbacks.preemption import PREEMPT_NAME
from brainlab.train import build, main, no_lightning_requeue, run
from brainlab.utils.checkpoint_io import AtomicCheckpointIO
from brainlab.utils.instantiate import instantiate_dict

FAST = ["trainer.limit_val_batches=1", "data.test_samples_per_class=2", "trainer.max_epochs=3",
        "callbacks.snn_media=null", "callbacks.neuromorphic=null"]


class RaiseSignal(pl.Callback):
    """Raises `signum` in this process at the end of training step `at_step`."""

    def __init__(self, signum: int, at_step: int = 1) -> None:
        self.signum, self.at_step = signum, at_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.at_step:
            signal.raise_signal(self.signum)


@pytest.fixture
def with_signal(monkeypatch):
    """`with_signal(signum)`: the next run gets a RaiseSignal callback."""

    def add(signum: int, at_step: int = 1) -> None:
        original = train_module.instantiate_dict

        def instantiate_dict(cfg, group):
            found = original(cfg, group)
            return [*found, RaiseSignal(signum, at_step)] if group == "callbacks" else found

        monkeypatch.setattr(train_module, "instantiate_dict", instantiate_dict)

    return add


def saved_step(path: Path) -> int:
    return torch.load(path, weights_only=False, map_location="cpu")["global_step"]


def test_sigterm_saves_exits_143_and_the_run_dir_resumes(make_cfg, with_signal, capsys, caplog, monkeypatch) -> None:
    with_signal(signal.SIGTERM)
    cfg = make_cfg(*FAST)
    with pytest.raises(SystemExit) as stop:
        main(cfg)
    assert stop.value.code == 143
    run_dir = Path(cfg.paths.output_dir)
    saved = run_dir / "checkpoints" / PREEMPT_NAME
    assert saved.is_file()
    assert saved_step(saved) in (1, 2), "saved at the end of the step the signal came in (or the next)"
    err = capsys.readouterr().err.strip().splitlines()
    line = next(x for x in err if x.startswith("stopped:"))
    assert "preempted (SIGTERM)" in line and str(saved) in line and f"ckpt_path={run_dir}" in line
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or not callable(
        getattr(signal.getsignal(signal.SIGTERM), "__self__", None)), "handlers given back"

    monkeypatch.undo()  # no signal this time; ckpt_path=<run dir>: its newest checkpoint, preempt.ckpt
    assert train_module.resolve_ckpt_path(str(run_dir)) == str(saved)
    resumed = make_cfg(*FAST, "trainer.max_epochs=1", "test=false", f"ckpt_path={run_dir}",
                       "paths.output_dir=" + str(run_dir.parent / "resumed"))
    with caplog.at_level(logging.INFO):
        run(resumed)
    assert f"Restoring states from the checkpoint path at {saved}" in caplog.text
    last = Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert saved_step(last) == 3, "the first epoch (3 steps) finished from the saved step"


def test_ctrl_c_saves_and_exits_130(make_cfg, with_signal, capsys) -> None:
    with_signal(signal.SIGINT)
    cfg = make_cfg(*FAST)
    with pytest.raises(SystemExit) as stop:
        main(cfg)
    assert stop.value.code == 130
    assert (Path(cfg.paths.output_dir) / "checkpoints" / PREEMPT_NAME).is_file()
    assert "interrupted (SIGINT)" in capsys.readouterr().err


def slurm_local_cfg(sweep_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=["hydra/launcher=slurm_local", f"hydra.sweep.dir={sweep_dir}"],
                       return_hydra_config=True)


def test_submitit_requeue_signal_saves_requeues_the_same_job_and_it_resumes(make_cfg, with_signal, caplog, monkeypatch,
                                                                             tmp_path) -> None:
    """submitit's own USR2 handler, as a submitit job installs it, around the launcher of hydra/launcher=slurm_local:
    `preempt.ckpt` at the step end, then submitit calls the launcher's `checkpoint()`, which resubmits the same job
    (same overrides, same job number: the same job dir `${hydra.sweep.dir}/${hydra.job.num}`), and exits with the
    local executor's requeue status. The requeued job (the same config and job dir) resumes from `preempt.ckpt`."""
    from submitit.core.job_environment import SignalHandler
    from submitit.core.utils import DelayedSubmission, JobPaths
    from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, LocalJobEnvironment

    hydra_cfg = slurm_local_cfg(tmp_path / "sweep")
    assert OmegaConf.to_container(hydra_cfg.hydra.sweep)["subdir"] == "${hydra.job.num}"
    launcher = instantiate(hydra_cfg.hydra.launcher)
    job = (["seed=1"], "hydra.sweep.dir", 3, "job_id_for_3", {})
    submission = DelayedSubmission(launcher, *job)
    submission.set_timeout(hydra_cfg.hydra.launcher.timeout_min, 0)
    for key, value in {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "4242",
                       "SUBMITIT_LOCAL_GLOBALID": "0"}.items():
        monkeypatch.setenv(key, value)
    paths = JobPaths(tmp_path / "sweep" / ".submitit" / "4242", job_id="4242", task_id=0)
    paths.folder.mkdir(parents=True)
    handler = SignalHandler(LocalJobEnvironment(), paths, submission)

    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    try:
        with_signal(signal.SIGUSR2)
        cfg = make_cfg(*FAST)
        with pytest.raises(SystemExit) as stop:
            main(cfg)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stop.value.code == LOCAL_REQUEUE_RETURN_CODE, "submitit requeued the job"
    saved = Path(cfg.paths.output_dir) / "checkpoints" / PREEMPT_NAME
    step = saved_step(saved)
    assert step in (1, 2)
    requeued = DelayedSubmission.load(paths.submitted_pickle)  # what the requeued job runs
    assert type(requeued.function) is type(launcher) and requeued.args == job

    monkeypatch.setattr(train_module, "instantiate_dict", instantiate_dict)  # no signal this time
    again = make_cfg(*FAST, "trainer.max_epochs=1", "test=false")  # the requeued job: the same config and job dir
    with caplog.at_level(logging.INFO):
        run(again)
    assert "this job was preempted and requeued" in caplog.text
    assert f"Restoring states from the checkpoint path at {saved}" in caplog.text
    assert saved_step(Path(again.paths.output_dir) / "checkpoints" / "last.ckpt") == 3


SLURM_TASK = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "77", "SLURM_NODELIST": "node1",
              "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def test_under_slurm_lightning_never_requeues(make_cfg, monkeypatch) -> None:
    """A SLURM task (as srun starts it): the built trainer's SLURMEnvironment has auto-requeue off, so Lightning sets
    no USR1 handler (submitit's USR2 requeues); also when `trainer.plugins` names its own plugins."""
    for key, value in SLURM_TASK.items():
        monkeypatch.setenv(key, value)
    _, _, trainer = build(make_cfg("hydra/launcher=slurm"))
    environment = trainer._accelerator_connector.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and environment.auto_requeue is False
    usr1 = signal.getsignal(signal.SIGUSR1)
    trainer._signal_connector.register_signal_handlers()
    try:
        assert signal.getsignal(signal.SIGUSR1) is usr1, "Lightning's requeue handler is not installed"
    finally:
        trainer._signal_connector.teardown()

    own = pl.Trainer(plugins=[AtomicCheckpointIO()], logger=False, enable_checkpointing=False, accelerator="cpu")
    assert own._accelerator_connector.cluster_environment.auto_requeue is True, "Lightning's default under SLURM"
    no_lightning_requeue(own)
    assert own._accelerator_connector.cluster_environment.auto_requeue is False


def test_a_sweep_metric_never_logged_is_one_warning_and_exit_0(make_cfg, capsys) -> None:
    cfg = make_cfg(*FAST, "trainer.max_epochs=1", "trainer.limit_val_batches=0")
    assert main(cfg) is None
    err = capsys.readouterr().err
    assert err.count("warning: optimized_metric='val/acc_best' was not logged") == 1
    assert (Path(cfg.paths.output_dir) / "metrics.json").is_file()


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow  # three Python starts (train.py, the submitit job, the requeued job) and submitit's polling: ~30 s
def test_a_slurm_local_job_requeued_by_usr2_resumes_in_its_job_dir(tmp_path: Path) -> None:
    """hydra/launcher=slurm_local, end to end: USR2 to the running job (what SLURM sends before the time limit or at
    preemption) saves `preempt.ckpt`; submitit requeues the job (its local executor restarts it), and the requeued job
    resumes from `preempt.ckpt` in the same job dir and finishes; the multirun ends with status 0."""
    sweep, max_steps = tmp_path / "sweep", 60
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm_local", *TINY, "trainer.max_epochs=-1",
           f"trainer.max_steps={max_steps}", "callbacks.step_checkpoint.every_n_train_steps=1", "test=false",
           f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while time.time() < deadline and not list((sweep / "0" / "checkpoints" / "steps").glob("step*.ckpt")):
                assert proc.poll() is None, (tmp_path / "out.txt").read_text()[-3000:]
                time.sleep(0.05)
            controller = next(int(p.name) for p in (sweep / ".submitit").iterdir() if p.name.isdigit())
            (task,) = children(controller)  # the job's one task (submitit's local executor runs it under a controller)
            os.kill(task, signal.SIGUSR2)
            assert proc.wait(timeout=300) == 0, (tmp_path / "out.txt").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    job = sweep / "0"
    assert (job / "checkpoints" / PREEMPT_NAME).is_file()
    assert "this job was preempted and requeued" in (job / "train.log").read_text()
    submitit_log = "".join(p.read_text() for p in (sweep / ".submitit" / str(controller)).glob("*_log.*"))
    assert "Requeued job" in submitit_log
    newest = max((job / "checkpoints" / "steps").glob("step*.ckpt"))
    assert saved_step(newest) == max_steps, "the requeued job finished the training"
    assert "val/acc" in json.loads((job / "metrics.json").read_text())
