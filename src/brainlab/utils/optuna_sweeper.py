"""The Optuna sweeper brainlab runs (`conf/hparams_search/optuna.yaml`, registered with Hydra as
`hydra_plugins.brainlab_sweeper.optuna.BrainlabOptunaSweeper`): hydra-optuna-sweeper's, made to survive.

- A failed trial (the job raised, returned nothing or NaN) is told to the study as FAIL with its error line as the
  user attribute `error`; the sweep goes on while the failure rate stays within `max_failure_rate` (1.0 here).
- The study is kept in the sweep dir: `storage: sqlite:///${hydra.sweep.dir}/optuna.db` (optuna's RDB storage, on
  SQLAlchemy 1.4: optuna 2.10 does not run it on 2.x, hence the pin in pyproject.toml). Every trial's params, value
  or error, and job number (user attribute `job`) are committed as trials start and end.
  `resume=true hydra.sweep.dir=<dir>` continues it: `n_trials` is the total, trials left running by a stopped sweep
  are told FAIL ("interrupted"), new jobs are numbered after the existing job dirs. A sweep dir of an earlier
  version (the study in `optuna_trials.json`, no `optuna.db`) resumes too: its trials are copied into the storage.
- `optimization_results.yaml` is always written, after every batch of trials and at the end (also when every trial
  failed, and when the sweep stops early): best params and value (null when none completed), counts, and the failed
  trials with their errors.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState

from brainlab.core.atomic import atomic_write_text
from brainlab.core.errors import ConfigError

log = logging.getLogger(__name__)

ERROR_FILE = "error.txt"
#: the study of sweep dirs written before the sqlite storage (read on resume, never written)
JOURNAL = "optuna_trials.json"
RESULTS = "optimization_results.yaml"
RDB_SCHEMES = {"sqlite", "postgresql", "mysql", "oracle", "mssql"}


def replay_journal(study: optuna.Study, sweep_dir: Path) -> int:
    """Copy the trials of a sweep dir of an earlier version (`optuna_trials.json`) into `study`; trials that were
    running are failed. Returns how many were copied."""
    journal = sweep_dir / JOURNAL
    if not journal.is_file():
        return 0
    records = json.loads(journal.read_text())
    for record in records:
        state = TrialState[record["state"]]
        attrs = dict(record.get("user_attrs") or {})
        if state in (TrialState.RUNNING, TrialState.WAITING):
            state = TrialState.FAIL
            attrs.setdefault("error", "interrupted: the sweep stopped during it")
        values = record.get("values")
        with warnings.catch_warnings():  # create_trial / add_trial are "experimental" in optuna 2.10
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.add_trial(optuna.trial.create_trial(
                state=state, params=record["params"], user_attrs=attrs,
                distributions={k: json_to_distribution(d) for k, d in record["distributions"].items()},
                values=values if state == TrialState.COMPLETE else None))
    return len(records)


def check_storage(storage: str | None) -> None:
    """optuna 2.10's RDB storage fails on SQLAlchemy 2 with an AssertionError deep in its schema check: one line
    with the fix instead."""
    if not storage or str(storage).split(":", 1)[0].split("+")[0] not in RDB_SCHEMES:
        return
    import sqlalchemy

    if int(sqlalchemy.__version__.split(".")[0]) >= 2:
        raise ConfigError(
            f"hydra.sweeper.storage={storage} needs SQLAlchemy<2 (optuna {optuna.__version__}'s RDB storage does not "
            f"run on the installed {sqlalchemy.__version__}): pip install 'sqlalchemy>=1.4,<2' (brainlab's "
            "pyproject pins it), or hydra.sweeper.storage=null for a study kept in memory (no resume)")


def job_numbers(sweep_dir: Path) -> list[int]:
    """Numbers of the job dirs a sweep dir holds (`<sweep dir>/<n>`)."""
    if not sweep_dir.is_dir():
        return []
    return sorted(int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())


def failure_of(ret: JobReturn, job_dir: Path | None) -> str | None:
    """Why a job counts as failed (None when it returned a finite number)."""
    if ret.status == JobStatus.FAILED:
        saved = job_dir / ERROR_FILE if job_dir is not None else None
        if saved is not None and saved.is_file():
            return saved.read_text().strip()
        error = ret._return_value
        return f"{type(error).__name__}: {error}"
    value = ret.return_value
    if value is None:
        return "the job returned no value (optimized_metric not logged)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"the job returned {value!r}, not a number"
    if math.isnan(number) or math.isinf(number):
        return f"the job returned {number}"
    return None


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """hydra-optuna-sweeper's implementation with failures recorded, a persistent study and resume."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.resume = bool(config.get("resume", False))

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        check_storage(self.storage)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # the sqlite storage lives in it

        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        distributions, fixed_params = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            distributions = {**self.search_space_distributions, **distributions}
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        for name in fixed_params:
            distributions.pop(name, None)

        directions = self._get_directions()
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, sampler=self.sampler,
                                    directions=directions, load_if_exists=True)
        if self.resume and not study.trials and (copied := replay_journal(study, sweep_dir)):
            log.warning("resume: %d trials copied from %s (a sweep dir of an earlier version) into %s", copied,
                        sweep_dir / JOURNAL, self.storage or "the in-memory study")
        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            study._storage.set_trial_user_attr(stale._trial_id, "error", "interrupted: the sweep stopped during it")
            study.tell(stale.number, state=TrialState.FAIL)
        done = len(study.trials)
        if done:
            log.info("Study %s holds %d trials already (resume): %d to go", study.study_name, done,
                     max(self.n_trials - done, 0))
        self.job_idx = max([*job_numbers(sweep_dir), *(t.user_attrs.get("job", -1) for t in study.trials),
                            done - 1, -1]) + 1
        log.info("Study name: %s; storage: %s; sampler: %s; directions: %s", study.study_name, self.storage,
                 type(self.sampler).__name__, directions)
        to_go = self.n_trials - done
        if to_go <= 0:  # nothing left to run: the results of the study as it is
            self.write_results(study, sweep_dir, directions)
        try:
            self.run_trials(study, sweep_dir, distributions, fixed_params, directions, to_go)  # results per batch
        except BaseException:  # the sweep stops early (too many failures, a signal, an error): the results so far
            try:
                self.write_results(study, sweep_dir, directions)
            except Exception as err:  # noqa: BLE001 - the error that stopped the sweep is the one to report
                log.error("could not write %s: %s", sweep_dir / RESULTS, err)
            raise

    def run_trials(self, study: optuna.Study, sweep_dir: Path, distributions: dict, fixed_params: dict,
                   directions: list[str], n_trials_to_go: int) -> None:
        assert self.launcher is not None
        while n_trials_to_go > 0:
            batch_size = min(n_trials_to_go, self.n_jobs)
            trials = [study.ask() for _ in range(batch_size)]
            overrides = self._configure_trials(trials, distributions, fixed_params)
            first = self.job_idx
            for number, trial in enumerate(trials, start=first):
                trial.set_user_attr("job", number)
            returns = self.launcher.launch(overrides, initial_job_idx=first)
            self.job_idx += len(returns)
            failures = []
            for number, (trial, ret) in enumerate(zip(trials, returns, strict=True), start=first):
                error = failure_of(ret, sweep_dir / str(number))
                if error is None:
                    values = ([float(ret.return_value)] if len(directions) == 1
                              else [float(v) for v in ret.return_value])
                    try:
                        study.tell(trial, values=values, state=TrialState.COMPLETE)
                        continue
                    except (ValueError, RuntimeError) as err:  # e.g. the wrong number of values
                        error = f"{type(err).__name__}: {err}"
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL)
                log.warning("trial %d (job %d) failed: %s", trial.number, number, error)
                failures.append(error)
            self.write_results(study, sweep_dir, directions)  # current after every batch (a kill -9 keeps it)
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                raise RuntimeError(f"{len(failures)} of {len(returns)} trials failed, more than "
                                   f"max_failure_rate={self.max_failure_rate}: {failures[0]}")
            n_trials_to_go -= batch_size

    def write_results(self, study: optuna.Study, sweep_dir: Path, directions: list[str]) -> dict[str, Any]:
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        failed = [{"trial": t.number, "job": t.user_attrs.get("job"), "params": t.params,
                   "error": t.user_attrs.get("error", "failed")} for t in trials if t.state == TrialState.FAIL]
        results: dict[str, Any] = {"name": "optuna", "n_trials": len(trials), "n_complete": len(complete),
                                   "n_failed": len(failed)}
        if len(directions) < 2:
            best = study.best_trial if complete else None
            results.update(best_params=best.params if best else None, best_value=best.value if best else None)
            if best:
                log.info("Best parameters: %s; best value: %s", best.params, best.value)
        else:
            results["solutions"] = [{"params": t.params, "values": t.values} for t in (study.best_trials
                                                                                      if complete else [])]
        if not complete:
            log.error("no trial of %d completed: optimization_results.yaml has no best value", len(trials))
        results["failed"] = failed
        atomic_write_text(sweep_dir / RESULTS, OmegaConf.to_yaml(OmegaConf.create(results)))
        return results


__all__ = ["ResumableOptunaSweeperImpl", "failure_of", "job_numbers", "replay_journal", "check_storage",
           "JOURNAL"]
