"""Lightning's CSVLogger, made safe for a file continued by a new process (ddp_spawn: fit, then test); Lightning's
advertising tips kept out of the terminal; a resumed run continues its loggers (`continue_loggers`)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

log = logging.getLogger(__name__)


class AppendingExperimentWriter(ExperimentWriter):
    """Takes the columns already in metrics.csv into its header before appending rows."""

    def save(self) -> None:
        if self.metrics and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            if set(header) - set(self.metrics_keys):
                self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
        super().save()


class CSVLogger(LightningCSVLogger):
    """`pytorch_lightning.loggers.CSVLogger` whose writer appends safely across processes."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment


#: Lightning's info lines that advertise its cloud products (litlogger, litmodels), printed by every Trainer
LIGHTNING_TIP = "💡 Tip:"
LIGHTNING_RANK_ZERO_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")


class DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_TIP)


def hide_lightning_tips() -> None:
    """Keep Lightning's product tips out of every run's output (idempotent)."""
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropLightningTips) for f in logger.filters):
            logger.addFilter(DropLightningTips())


def saved_logger_identity(ckpt_path: str | Path) -> dict[str, dict[str, Any]]:
    """The loggers' identity a checkpoint holds (written by `brainlab.callbacks.resume_state`; {} if none)."""
    path = Path(ckpt_path)
    if not path.is_file():  # a sharded FSDP checkpoint (a directory) holds none
        return {}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("could not read the loggers' identity from %s: %s", path, exc)
        return {}
    found = checkpoint.get("logger_identity") if isinstance(checkpoint, dict) else None
    return found if isinstance(found, dict) else {}


def continue_loggers(logger_cfg: DictConfig | None, ckpt_path: str | Path) -> list[str]:
    """Point the loggers of a resumed run at the run they continue: the same W&B run id (`resume: allow`), the
    same TensorBoard log dir. An id or dir the config sets itself wins. Returns what was continued."""
    if not logger_cfg:
        return []
    saved = saved_logger_identity(ckpt_path)
    done = []
    for name, entry in logger_cfg.items():
        target = str((entry or {}).get("_target_", ""))
        if target.endswith("WandbLogger") and saved.get("wandb", {}).get("id") and not entry.get("id"):
            entry.id = saved["wandb"]["id"]
            entry.resume = "allow"
            done.append(f"{name}: W&B run {entry.id}")
        elif target.endswith("TensorBoardLogger") and saved.get("tensorboard", {}).get("log_dir"):
            entry.save_dir, entry.name, entry.version = saved["tensorboard"]["log_dir"], None, ""
            done.append(f"{name}: {entry.save_dir}")
    for line in done:
        log.info("resumed run continues logger %s", line)
    return done
