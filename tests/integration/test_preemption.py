"""SIGTERM / Ctrl-C / submitit's requeue signal during training: `preempt.ckpt` at the step end, one line, 143 / 130,
and the resume from it (in-process: a callback raises the signal after the first step)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

import brainlab.train as train_module
from brainlab.callbacks.preemption import PREEMPT_NAME
from brainlab.train import main, run
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
    resumed = make_cfg(*FAST, "trainer.max_epochs=1", f"ckpt_path={run_dir}",
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


def test_submitit_requeue_signal_saves_requeues_and_the_job_resumes(make_cfg, with_signal, caplog, monkeypatch) -> None:
    """What submitit does on its USR2 (checkpoint the launcher, requeue, exit) stands in a fake handler here."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    requeued = []

    def submitit_handler(signum, frame):
        requeued.append(signum)
        raise SystemExit(144)  # submitit's local requeue status

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        with_signal(signal.SIGUSR2)
        cfg = make_cfg(*FAST)
        with pytest.raises(SystemExit) as stop:
            main(cfg)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stop.value.code == 144 and requeued == [signal.SIGUSR2]
    saved = Path(cfg.paths.output_dir) / "checkpoints" / PREEMPT_NAME
    step = saved_step(saved)

    monkeypatch.setattr(train_module, "instantiate_dict", instantiate_dict)  # no signal this time
    again = make_cfg(*FAST, "trainer.max_epochs=1")  # the requeued job: the same config and job dir
    with caplog.at_level(logging.INFO):
        run(again)
    assert f"Restoring states from the checkpoint path at {saved}" in caplog.text
    assert step in (1, 2)
    assert saved_step(Path(again.paths.output_dir) / "checkpoints" / "last.ckpt") == 3


def test_a_sweep_metric_never_logged_is_one_warning_and_exit_0(make_cfg, capsys) -> None:
    cfg = make_cfg(*FAST, "trainer.max_epochs=1", "trainer.limit_val_batches=0")
    assert main(cfg) is None
    err = capsys.readouterr().err
    assert err.count("warning: optimized_metric='val/acc_best' was not logged") == 1
    assert (Path(cfg.paths.output_dir) / "metrics.json").is_file()
