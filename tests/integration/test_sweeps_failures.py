"""Sweeps that survive (a subprocess, as a user runs them): an Optuna trial that fails is recorded and the sweep
goes on; the study resumes in its sweep dir with `n_trials` as the total; the results file is always written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.config import CONF, ROOT, TINY
from hydra import compose, initialize_config_dir

from brainlab.utils.hydra_callbacks import RefuseExistingRunDir

FAST = [*TINY, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "data.test_samples_per_class=2",
        "callbacks.snn_media=null", "callbacks.neuromorphic=null", "hydra.sweeper.params={}"]
ENV = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


def test_a_failed_trial_is_recorded_the_sweep_goes_on_and_resumes(tmp_path: Path) -> None:
    sweep = tmp_path / "optuna"
    search = ["hparams_search=optuna", *FAST, "hydra.sweeper.sampler.n_startup_trials=10",
              "model.net.hidden_dim=choice(0,16)", "hydra.sweeper.sampler.seed=3", f"hydra.sweep.dir={sweep}"]
    first = train(*search, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["n_trials"] == 2
    trials = json.loads((sweep / "optuna_trials.json").read_text())
    failed = [t for t in trials if t["state"] == "FAIL"]
    for trial in failed:
        assert trial["params"]["model.net.hidden_dim"] == 0
        assert "hidden_dim must be a positive integer" in trial["user_attrs"]["error"]
        assert (sweep / str(trial["user_attrs"]["job"]) / "error.txt").is_file()
    assert results["n_failed"] == len(failed)
    assert first.returncode == (1 if len(failed) == 2 else 0), first.stderr[-2000:]

    again = train(*search, "hydra.sweeper.n_trials=3", "resume=true", cwd=tmp_path)
    assert again.returncode in (0, 1), again.stderr[-2000:]
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == [0, 1, 2], "job 2 after 0 and 1"
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["n_trials"] == 3, "n_trials counts the total"
    assert [t["number"] for t in json.loads((sweep / "optuna_trials.json").read_text())] == [0, 1, 2]


def hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def test_a_used_sweep_dir_is_refused_without_resume(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "used"
    (sweep / "0").mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        RefuseExistingRunDir().on_multirun_start(config=hydra_cfg("hparams_search=optuna",
                                                                  f"hydra.sweep.dir={sweep}"))
    assert stop.value.code == 2 and "resume=true" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        RefuseExistingRunDir().on_multirun_start(
            config=hydra_cfg("hparams_search=optuna", f"hydra.sweep.dir={sweep}", "resume=true"))
    assert stop.value.code == 2 and "no study to continue" in capsys.readouterr().err
    (sweep / "optuna_trials.json").write_text("[]")
    RefuseExistingRunDir().on_multirun_start(
        config=hydra_cfg("hparams_search=optuna", f"hydra.sweep.dir={sweep}", "resume=true"))
