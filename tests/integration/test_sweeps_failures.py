"""Sweeps that survive, in-process: the Optuna sweeper brainlab runs (conf/hparams_search/optuna.yaml) with a stand-in
for Hydra's launcher (no training): the study in `<sweep dir>/optuna.db`, failed trials recorded, `resume=true` with
`n_trials` as the total and new jobs numbered after the old ones, a sweep stopped mid-job, a sweep dir of the earlier
JSON journal, `optimization_results.yaml` always written; the resume checks of the sweep dir. The same through
`train.py` as a user runs it: tests/integration/test_sweeps.py."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from helpers.config import CONF
from hydra import compose, initialize_config_dir
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate

from brainlab.core.errors import ConfigError
from brainlab.utils.hydra_callbacks import RefuseExistingRunDir

# optuna (and the sweeper that imports it) only where used: ~1 s of import that every xdist worker would pay collecting

HIDDEN = "model.net.hidden_dim"
ERROR = "model.net.hidden_dim must be a positive integer, got 0"


def hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


class Launcher:
    """Hydra's launcher as the sweeper sees it: job `n` in `<sweep dir>/n`; `hidden_dim=0` fails as brainlab.train
    fails it (error.txt, a FAILED return), other jobs return hidden_dim / 100; `stop_at`: that job is stopped by a
    signal (SystemExit 143 through the sweep, as `exit_interrupted` does)."""

    def __init__(self, sweep: Path, stop_at: int | None = None) -> None:
        self.sweep, self.stop_at = sweep, stop_at

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        returns = []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            job = self.sweep / str(number)
            job.mkdir(parents=True)
            if number == self.stop_at:
                raise SystemExit(143)
            hidden = int(dict(o.split("=", 1) for o in overrides)[HIDDEN])
            if hidden == 0:
                (job / "error.txt").write_text(ERROR + "\n")
                returns.append(JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                                         _return_value=ConfigError(ERROR)))
            else:
                returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED,
                                         _return_value=hidden / 100))
        return returns


def sweep_cfg(sweep_dir: Path):
    """The sweep's config, composed once per test (`sweep` sets n_trials and resume on a copy)."""
    return hydra_cfg("hparams_search=optuna", f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.params=null")


def sweep(monkeypatch, cfg, n_trials: int, resume: bool = False, stop_at: int | None = None) -> dict:
    """Run the configured sweeper over `hidden_dim=choice(0,16,24)`; the results file it wrote."""
    cfg = copy.deepcopy(cfg)
    cfg.hydra.sweeper.n_trials, cfg.resume = n_trials, resume
    sweep_dir = Path(cfg.hydra.sweep.dir)
    sweeper = instantiate(cfg.hydra.sweeper)
    monkeypatch.setattr(Plugins.instance(), "instantiate_launcher", lambda **_: Launcher(sweep_dir, stop_at))
    sweeper.setup(hydra_context=None, task_function=None, config=cfg)
    sweeper.sweep([f"{HIDDEN}=choice(0,16,24)"])
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def study(sweep_dir: Path):
    import optuna

    return optuna.load_study(study_name="train", storage=f"sqlite:///{sweep_dir}/optuna.db")


def job_numbers(sweep_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit())


def test_the_study_lives_in_sqlite_records_failures_and_resumes_after_a_stop(tmp_path: Path, monkeypatch) -> None:
    import optuna

    sweep_dir = tmp_path / "optuna"
    cfg = sweep_cfg(sweep_dir)
    results = sweep(monkeypatch, cfg, 3)
    trials = study(sweep_dir).trials
    assert [t.user_attrs["job"] for t in trials] == [0, 1, 2] == job_numbers(sweep_dir)
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.params[HIDDEN] == 0 and t.user_attrs["error"] == ERROR for t in failed)
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert (len(failed), len(complete)) == (1, 2), "TPE's random start, seed 1234, draws 16, 0, 24 (optuna 2.10)"
    assert (results["n_trials"], results["n_failed"], results["n_complete"]) == (3, len(failed), len(complete))
    assert results["best_value"] == max(complete) == 0.24
    assert [f["job"] for f in results["failed"]] == [t.user_attrs["job"] for t in failed]

    # resumed, then stopped by a signal during job 4: the results so far are written, trial 4 stays RUNNING
    with pytest.raises(SystemExit) as stop:
        sweep(monkeypatch, cfg, 6, resume=True, stop_at=4)
    assert stop.value.code == 143
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["n_trials"] == 5 and study(sweep_dir).trials[4].state == optuna.trial.TrialState.RUNNING

    # resumed again: n_trials counts the total, trial 4 is failed as interrupted, job 5 after the job dirs 0-4
    results = sweep(monkeypatch, cfg, 6, resume=True)
    trials = study(sweep_dir).trials
    assert results["n_trials"] == 6 and [t.number for t in trials] == list(range(6))
    assert [t.user_attrs["job"] for t in trials] == list(range(6)) == job_numbers(sweep_dir)
    assert trials[4].state == optuna.trial.TrialState.FAIL and "interrupted" in trials[4].user_attrs["error"]
    assert {"trial": 4, "job": 4} in [{"trial": f["trial"], "job": f["job"]} for f in results["failed"]]


def test_a_sweep_dir_of_the_json_journal_resumes_into_sqlite(tmp_path: Path, monkeypatch, caplog) -> None:
    """Sweep dirs written before the sqlite storage kept the study in optuna_trials.json: resume copies it."""
    from optuna.distributions import CategoricalDistribution, distribution_to_json

    from brainlab.utils.optuna_sweeper import JOURNAL

    sweep_dir = tmp_path / "old"
    for number in (0, 1):
        (sweep_dir / str(number)).mkdir(parents=True)
    dist = {HIDDEN: distribution_to_json(CategoricalDistribution((0, 16, 24)))}
    (sweep_dir / JOURNAL).write_text(json.dumps([
        {"number": 0, "state": "COMPLETE", "values": [0.16], "params": {HIDDEN: 16}, "distributions": dist,
         "user_attrs": {"job": 0}},
        {"number": 1, "state": "RUNNING", "values": None, "params": {HIDDEN: 24}, "distributions": dist,
         "user_attrs": {"job": 1}},
    ]))
    cfg = sweep_cfg(sweep_dir)
    cfg.resume = True
    RefuseExistingRunDir().on_multirun_start(config=cfg)
    with caplog.at_level(logging.WARNING):
        results = sweep(monkeypatch, cfg, 3, resume=True)
    assert f"2 trials copied from {sweep_dir / JOURNAL}" in caplog.text
    trials = study(sweep_dir).trials
    assert [t.user_attrs["job"] for t in trials] == [0, 1, 2] == job_numbers(sweep_dir)
    assert trials[0].value == 0.16 and "interrupted" in trials[1].user_attrs["error"]
    assert results["n_trials"] == 3 and results["best_value"] >= 0.16
    assert sweep(monkeypatch, cfg, 3, resume=True)["n_trials"] == 3, "copied once"


def test_a_used_sweep_dir_is_refused_without_resume(tmp_path: Path, capsys) -> None:
    import optuna

    sweep_dir = tmp_path / "used"
    (sweep_dir / "0").mkdir(parents=True)

    cfg = sweep_cfg(sweep_dir)

    def start(resume: bool = False, storage: str | None = cfg.hydra.sweeper.storage) -> None:
        changed = copy.deepcopy(cfg)
        changed.resume, changed.hydra.sweeper.storage = resume, storage
        RefuseExistingRunDir().on_multirun_start(config=changed)

    for kwargs, message in (({}, "resume=true"),
                            ({"resume": True}, f"no study to continue in hydra.sweep.dir={sweep_dir} (no "
                                               f"{sweep_dir}/optuna.db)"),
                            ({"resume": True, "storage": None}, "keeps the study in memory")):
        with pytest.raises(SystemExit) as stop:
            start(**kwargs)
        assert stop.value.code == 2 and message in capsys.readouterr().err
    optuna.create_study(study_name="train", storage=f"sqlite:///{sweep_dir}/optuna.db")
    start(resume=True)


def test_sqlalchemy_2_under_the_rdb_storage_is_one_line(monkeypatch) -> None:
    """optuna 2.10's RDB storage fails on SQLAlchemy 2 deep inside (pyproject pins <2): the fix in one line."""
    import sqlalchemy

    from brainlab.utils.optuna_sweeper import check_storage

    assert int(sqlalchemy.__version__.split(".")[0]) < 2, "the pin sqlalchemy>=1.4,<2 is installed"
    check_storage("sqlite:///x.db")
    monkeypatch.setattr(sqlalchemy, "__version__", "2.0.36")
    with pytest.raises(ConfigError, match=r"needs SQLAlchemy<2 .*pip install 'sqlalchemy>=1.4,<2'"):
        check_storage("sqlite:///x.db")
    check_storage(None)
