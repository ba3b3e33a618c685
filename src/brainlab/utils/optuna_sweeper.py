"""The Optuna sweeper brainlab runs (`conf/hparams_search/optuna.yaml`, registered with Hydra as
`hydra_plugins.brainlab_sweeper.optuna.BrainlabOptunaSweeper`): hydra-optuna-sweeper's, made to survive.

- A failed trial (the job raised, returned nothing or NaN) is told to the study as FAIL with its error line as the
  user attribute `error`; the sweep goes on while the failure rate stays within `max_failure_rate` (1.0 here).
- The study is kept in the sweep dir: every trial (params, value or error, job number) in `optuna_trials.json`,
  rewritten atomically as trials start and end (optuna 2.10's RDB storage does not run on SQLAlchemy 2, so the
  journal is the default; an explicit `hydra.sweeper.storage=sqlite:///...` is used as given when it works).
  `resume=true hydra.sweep.dir=<dir>` continues it: `n_trials` is the total, trials left running by a stopped sweep
  are told FAIL ("interrupted"), new jobs are numbered after the existing job dirs.
- `optimization_results.yaml` is always written (also when every trial failed): best params and value (null when
  none completed), counts, and the failed trials with their errors.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from brainlab.core.atomic import atomic_write_text

log = logging.getLogger(__name__)

ERROR_FILE = "error.txt"
JOURNAL = "optuna_trials.json"


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "state": trial.state.name, "values": trial.values, "params": trial.params,
            "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
            "user_attrs": trial.user_attrs}


def write_journal(study: optuna.Study, sweep_dir: Path) -> None:
    records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    atomic_write_text(sweep_dir / JOURNAL, json.dumps(records, indent=1))


def replay_journal(study: optuna.Study, sweep_dir: Path) -> int:
    """Add the trials of an earlier session to an in-memory study; trials that were running are failed."""
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
        study.add_trial(optuna.trial.create_trial(
            state=state, params=record["params"], user_attrs=attrs,
            distributions={k: json_to_distribution(d) for k, d in record["distributions"].items()},
            values=values if state == TrialState.COMPLETE else None))
    return len(records)


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

    def sweep(self, arguments: list[str]) -> None:  # noqa: C901 (the upstream loop, one piece)
        assert self.config is not None and self.launcher is not None
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
        if self.storage is None and self.resume:
            replay_journal(study, sweep_dir)
        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            study._storage.set_trial_user_attr(stale._trial_id, "error", "interrupted: the sweep stopped during it")
            study.tell(stale.number, state=TrialState.FAIL)
        done = len(study.trials)
        if done:
            log.info("Study %s holds %d trials already (resume): %d to go", study.study_name, done,
                     max(self.n_trials - done, 0))
        self.job_idx = max([*job_numbers(sweep_dir), len(study.trials) - 1, -1]) + 1
        log.info("Study name: %s; storage: %s; sampler: %s; directions: %s", study.study_name, self.storage,
                 type(self.sampler).__name__, directions)

        n_trials_to_go = self.n_trials - done
        while n_trials_to_go > 0:
            batch_size = min(n_trials_to_go, self.n_jobs)
            trials = [study.ask() for _ in range(batch_size)]
            overrides = self._configure_trials(trials, distributions, fixed_params)
            first = self.job_idx
            for number, trial in enumerate(trials, start=first):
                trial.set_user_attr("job", number)
            write_journal(study, sweep_dir)
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
            write_journal(study, sweep_dir)
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                self.write_results(study, sweep_dir, directions)
                raise RuntimeError(f"{len(failures)} of {len(returns)} trials failed, more than "
                                   f"max_failure_rate={self.max_failure_rate}: {failures[0]}")
            n_trials_to_go -= batch_size
        self.write_results(study, sweep_dir, directions)

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
        atomic_write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results)))
        return results


__all__ = ["ResumableOptunaSweeperImpl", "failure_of", "job_numbers"]
