"""`run(cfg)`: one Hydra config -> one Lightning run; returns the final metrics (for sweepers)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import FSDPStrategy

from brainlab.boundary import report
from brainlab.callbacks.preemption import PREEMPT_NAME, Preemption, RunInterrupted
from brainlab.callbacks.target_table import TargetTable
from brainlab.core.atomic import atomic_write_text
from brainlab.core.datamodule import bad_sample_counts
from brainlab.core.errors import ConfigError, find_brainlab_error
from brainlab.loggers import continue_loggers, hide_lightning_tips
from brainlab.report import print_report
from brainlab.utils.checkpoint_io import AtomicCheckpointIO
from brainlab.utils.instantiate import instantiate_dict
from brainlab.utils.record import add_to_record, write_record
from brainlab.validate import check_checkpoint, read_checkpoint, validate_run

log = logging.getLogger(__name__)

GPU_ACCELERATORS = {"gpu", "cuda"}
LIGHTNING_FSDP = {"fsdp", "fsdp_cpu_offload", "pytorch_lightning.strategies.FSDPStrategy",
                  "pytorch_lightning.strategies.fsdp.FSDPStrategy", "lightning.pytorch.strategies.FSDPStrategy"}


def strategy_name(trainer_cfg: DictConfig | None) -> str:
    """`trainer.strategy` as a name: the string itself, or the `_target_` of a strategy config."""
    strategy = (trainer_cfg or {}).get("strategy", "auto")
    return str(strategy.get("_target_", "")) if isinstance(strategy, DictConfig) else str(strategy)


def check_trainer(trainer_cfg: DictConfig) -> None:
    """Refuse trainer settings this machine cannot run, with the fix."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    strategy = strategy_name(trainer_cfg)
    # Lightning's own refusal (its FSDPStrategy by name or class, not subclasses), said early and with the fix
    if strategy in LIGHTNING_FSDP and (accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            f"trainer.strategy={strategy} is FSDP, and trainer=fsdp needs CUDA GPUs (Lightning's FSDP does not run "
            "on CPU; trainer=torchrun picks FSDP too): use trainer=ddp on CPU, or run on a GPU machine"
        )
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} needs CUDA, but torch.cuda.is_available() is False on this "
            "machine: use trainer=cpu"
        )


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint a run dir holds (`checkpoints/**/*.ckpt`: preempt, last, best, step; by time written)."""
    found = [p for p in (run_dir / "checkpoints").rglob("*.ckpt") if not p.name.startswith(".")]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "checkpoints").is_dir() or (path / ".hydra").is_dir()
                              or (path / "record").is_dir())


def resolve_ckpt_path(ckpt_path: str | None) -> str | None:
    """`ckpt_path=<run dir>` means that run dir's newest checkpoint (a file path or a sharded FSDP dir is kept)."""
    if not ckpt_path:
        return ckpt_path
    path = Path(ckpt_path)
    if not is_run_dir(path):
        return ckpt_path
    newest = newest_checkpoint(path)
    if newest is None:
        raise ConfigError(f"ckpt_path={ckpt_path} is a run dir without checkpoints (nothing under "
                          f"{path / 'checkpoints'}): point it at a run that saved one")
    log.info("ckpt_path=%s: resuming from its newest checkpoint %s", ckpt_path, newest)
    return str(newest)


def requeued_checkpoint(output_dir: Path) -> str | None:
    """A requeued scheduler job runs again in its own job dir: resume from the checkpoint saved at the signal."""
    saved = output_dir / "checkpoints" / PREEMPT_NAME
    if saved.exists():
        log.warning("resuming from %s (this job was preempted and requeued)", saved)
        return str(saved)
    return None


def check_ckpt_path(ckpt_path: str | None, trainer_cfg: DictConfig | None = None) -> None:
    """A checkpoint to resume from or test must exist (Lightning's own message comes late and long), and a sharded
    FSDP checkpoint (a directory) needs an FSDP trainer, or consolidating into one file that any trainer loads."""
    if not ckpt_path:
        return
    path = Path(ckpt_path)
    if not path.exists():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist: point it at a .ckpt of an earlier run")
    if path.is_dir() and not any(path.iterdir()):
        raise ConfigError(f"ckpt_path={ckpt_path} is an empty folder: point it at a .ckpt file or a run dir")
    if path.is_dir() and not any((path / n).exists() for n in ("meta.pt", ".metadata")) \
            and not any(path.glob("*.distcp")):
        raise ConfigError(f"ckpt_path={ckpt_path} is a folder that is neither a run dir (no checkpoints/, .hydra/ or "
                          "record/ in it) nor a sharded FSDP checkpoint: point it at a .ckpt file or a run dir")
    if path.is_dir() and "fsdp" not in strategy_name(trainer_cfg).lower():
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a sharded FSDP checkpoint (a directory): load it with trainer=fsdp, or "
            "consolidate it into one file that every trainer loads: python -m "
            f"pytorch_lightning.utilities.consolidate_checkpoint {ckpt_path} --output_file <file>.ckpt")


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Instantiate datamodule, phase (which builds its own net), callbacks, loggers and trainer."""
    check_trainer(cfg.trainer)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, _recursive_=False)
    callbacks = instantiate_dict(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_dict(cfg.get("logger"), "logger")
    hide_lightning_tips()
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, _convert_="all",
                          **trainer_plugins(cfg.trainer))
    no_lightning_requeue(trainer)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(resolved)
    return datamodule, model, trainer


def trainer_plugins(trainer_cfg: DictConfig) -> dict[str, list]:
    """Plugins the run always wants, unless `trainer.plugins` names its own: atomic checkpoint writes; under
    SLURM, Lightning's own auto-requeue off (the submitit launcher requeues: a job is never requeued twice)."""
    if trainer_cfg.get("plugins"):
        return {}
    plugins: list = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return {"plugins": plugins}


def no_lightning_requeue(trainer: pl.Trainer) -> None:
    """Lightning's SLURM auto-requeue off also when `trainer.plugins` names its own plugins (Lightning then detects
    SLURM itself, with auto-requeue on): the submitit launcher requeues, a job is never requeued twice."""
    environment = trainer._accelerator_connector.cluster_environment
    if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
        environment.auto_requeue = False


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test at the best-validation checkpoint; write the record and `metrics.json`."""
    validate_run(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"))
    if ckpt_path is None and cfg.get("train", True):
        ckpt_path = requeued_checkpoint(output_dir)
    check_ckpt_path(ckpt_path, cfg.trainer)
    if ckpt_path and Path(ckpt_path).is_file():
        read_checkpoint(Path(ckpt_path))
    seed = cfg.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    pl.seed_everything(seed, workers=True)
    resumed_from = ckpt_path if ckpt_path and cfg.get("train", True) else None
    if resumed_from:
        continue_loggers(cfg.get("logger"), resumed_from)
    datamodule, model, trainer = build(cfg)
    check_checkpoint(ckpt_path, model)
    write_record(cfg, output_dir, seed, resumed_from=resumed_from)
    try:
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            record_bad_samples(trainer, datamodule, output_dir)
            refuse_no_training(cfg, trainer, datamodule)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.get("test", True):
            checkpoint = trainer.checkpoint_callback
            best = getattr(checkpoint, "best_model_path", "") if cfg.get("train", True) else ""
            if isinstance(trainer.strategy, FSDPStrategy) and cfg.get("train", True):
                model = fresh_for_sharded_test(cfg, best)
            if model is not None:
                trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)  # the report prints
                metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    finally:
        for callback in trainer.callbacks:
            if isinstance(callback, Preemption):
                callback.release()

    finish(trainer, metrics, output_dir)
    return metrics


def record_bad_samples(trainer: pl.Trainer, datamodule: object, output_dir: Path) -> None:
    """The bad samples the data setup dropped (`data.on_bad_sample=skip`), per split, into `record/run.json`."""
    counts = bad_sample_counts(datamodule)
    if counts is not None and trainer.is_global_zero:
        add_to_record(output_dir, bad_samples=counts)


def refuse_no_training(cfg: DictConfig, trainer: pl.Trainer, datamodule: pl.LightningDataModule) -> None:
    """A fit that found no training batch trained nothing: stop before testing the untrained model, naming why."""
    if trainer.num_training_batches != 0 or trainer.global_step > 0:
        return
    try:
        samples = len(datamodule.train_dataloader().dataset)
    except Exception:  # noqa: BLE001 - only for the message
        samples = None
    batch = cfg.data.get("batch_size")
    if samples == 0:
        cause = "the training split is empty: check data.root (and the split settings such as data.val_fraction)"
    elif samples is not None and batch is not None and samples < int(batch):
        cause = (f"data.batch_size={batch} is larger than the {samples} training samples and the last incomplete "
                 f"batch is dropped: lower data.batch_size to {samples} or less")
    else:
        cause = (f"trainer.limit_train_batches={cfg.trainer.get('limit_train_batches')} leaves no batch of the "
                 f"{samples if samples is not None else '?'} training samples: raise it or remove it")
    raise ConfigError(f"no training batches, nothing was trained: {cause}")


def fresh_for_sharded_test(cfg: DictConfig, checkpoint: str) -> pl.LightningModule | None:
    """After an FSDP fit the module holds FSDP units whose root shards Lightning no longer wraps, so it cannot be
    tested in place (Lightning issue 20373): test a fresh module loaded from the sharded checkpoint instead."""
    if not checkpoint:
        log.warning("test skipped: under FSDP the test loads a checkpoint, and this run saved none")
        return None
    return instantiate(cfg.model, _recursive_=False)


def finish(trainer: pl.Trainer, metrics: dict[str, float], output_dir: Path) -> None:
    """Write `metrics.json` and print the report (the table is read back from the file the
    TargetTable callback wrote, which also works when the run happened in spawned processes)."""
    if not trainer.is_global_zero:
        return
    atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True))
    table = next((c for c in trainer.callbacks if isinstance(c, TargetTable)), None)
    table_file = output_dir / "targets.json"
    rows = json.loads(table_file.read_text()) if table is not None and table_file.is_file() else []
    print_report(metrics, rows, output_dir, target=table.target if table is not None else None)


def close_loggers() -> None:
    """Finish the W&B run (if any), so multirun jobs never merge into one W&B run, and shut
    W&B's service down: only then is the run's `.wandb` file complete on disk (finish alone
    can return before the service has flushed it)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
        wandb.teardown()


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def in_optuna_sweep() -> bool:
    """A job of an Optuna sweep: a failure raises (the sweeper records the trial as failed)."""
    if not in_multirun():
        return False
    return "optuna" in str(HydraConfig.get().sweeper.get("_target_", "")).lower()


class MetricNotLogged(ConfigError):
    """The sweep metric (`optimized_metric`) was never logged (a failed trial inside an Optuna sweep)."""


def metric_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises (`optimized_metric`). A run that never logged it (e.g. `trainer.max_steps`
    shorter than an epoch, or `trainer.limit_val_batches=0`) is still a finished run: one warning line, None;
    inside an Optuna sweep such a trial fails."""
    if not name:
        return None
    if name not in metrics:
        message = (f"optimized_metric={name!r} was not logged (logged: {', '.join(sorted(metrics)) or 'nothing'}); "
                   "no value to return to a sweeper")
        if in_optuna_sweep():
            raise MetricNotLogged(message)
        log.warning("%s", message)
        print(f"warning: {message}", file=sys.stderr)
        return None
    return metrics[name]


def record_failure(cfg: DictConfig, message: str) -> None:
    """`error.txt` in the job dir: the multirun summary and the Optuna study read it."""
    try:
        atomic_write_text(Path(cfg.paths.output_dir) / "error.txt", message + "\n")
    except OSError as err:
        log.error("could not write error.txt: %s", err)


def interrupted_line(exc: RunInterrupted, cfg: DictConfig | None) -> str:
    """One line: what stopped the run, what was saved, how to resume."""
    what = "preempted (SIGTERM)" if exc.signum == signal.SIGTERM else f"interrupted ({signal.Signals(exc.signum).name})"
    if exc.checkpoint is not None:
        run_dir = exc.checkpoint.parent.parent
        return (f"{what} {exc.where}: saved {exc.checkpoint}; resume with: "
                f"python train.py <same overrides> ckpt_path={run_dir}")
    return f"{what} {exc.where}: nothing saved"


@contextmanager
def signals_as_exits() -> Iterator[None]:
    """Outside Lightning's loops SIGTERM stops the run as RunInterrupted too (exit 143 with one line, not a silent
    kill); the Preemption callback takes the signals over while the trainer runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise RunInterrupted(signum, None, "outside training")

    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None) and os.environ.get("SUBMITIT_EXECUTOR"):
        yield  # submitit's own handling (it bypasses SIGTERM)
        return
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def main(cfg: DictConfig) -> float | None:
    """The entry point's body: run, report errors as one line, always close loggers.

    Exit statuses: 0 done (a sweep metric never logged is one warning line); 2 bad input; 130 Ctrl-C; 143 SIGTERM
    (with `preempt.ckpt` when it came during training). In a grid multirun a failed job writes `error.txt` in its
    dir and the sweep goes on (the multirun ends with a summary and a non-zero status, see
    brainlab.utils.hydra_callbacks); in an Optuna sweep a failed trial raises, and the sweeper records it.
    """
    try:
        with signals_as_exits():
            return metric_value(run(cfg), cfg.get("optimized_metric"))
    except RunInterrupted as exc:
        exit_interrupted(exc, cfg)
    except KeyboardInterrupt:
        exit_interrupted(RunInterrupted(signal.SIGINT, None, "(a second Ctrl-C, or outside training)"), cfg)
    except Exception as exc:
        known = find_brainlab_error(exc) or lightning_config_error(exc)
        message = str(known) if known else f"{type(exc).__name__}: {exc}"
        if in_multirun():
            log.exception("job failed: %s", message)
            record_failure(cfg, message)
            if in_optuna_sweep():
                raise
            return None
        exit_with_one_line(exc, output_dir_of(cfg))
    finally:
        close_loggers()


def output_dir_of(cfg: DictConfig | None) -> str | None:
    try:
        return str(cfg.paths.output_dir) if cfg is not None else None
    except Exception:  # noqa: BLE001 - a config whose paths do not resolve
        return None


def exit_interrupted(exc: RunInterrupted, cfg: DictConfig | None = None) -> NoReturn:
    """A signal ends the program (and a multirun: the sweep stops too) with one line and status 128 + signal."""
    line = interrupted_line(exc, cfg)
    log.error("%s", line)
    print(f"stopped: {line}", file=sys.stderr)
    raise SystemExit(exc.exit_code) from None


def exit_with_one_line(exc: Exception, output_dir: str | Path | None = None) -> NoReturn:
    """Any error ends the program with one `error:` line: status 2 for bad input (a brainlab error, Lightning's
    refusal of a trainer setting, an unusable path), 1 for an unexpected error, whose traceback goes into the run's
    log file (named by the line). `HYDRA_FULL_ERROR=1` lets it propagate with its traceback."""
    known = find_brainlab_error(exc) or lightning_config_error(exc)
    if known is not None:
        log.error("%s", known)
    raise SystemExit(report(exc, output_dir, known=known)) from None


def lightning_config_error(exc: BaseException) -> ConfigError | None:
    """Lightning's own refusal of a trainer setting, as a config error: while running (e.g. `limit_train_batches`
    too small) or when the Trainer is built from `trainer.*` (e.g. an unknown `trainer.precision`)."""
    if isinstance(exc, MisconfigurationException):
        return ConfigError(f"trainer settings refused by Lightning: {exc}")
    cause = exc.__cause__
    if (isinstance(exc, InstantiationException) and "full_key: trainer\n" in f"{exc}\n"
            and isinstance(cause, ValueError | TypeError)):
        return ConfigError(f"trainer settings refused by Lightning: {cause}")
    return None


__all__ = ["run", "main", "build", "finish", "check_trainer", "check_ckpt_path", "resolve_ckpt_path",
           "exit_with_one_line", "output_dir_of", "exit_interrupted", "metric_value"]
