"""Lightning's CSVLogger, made safe for a file continued by a new process (ddp_spawn: fit, then test); Lightning's
advertising tips kept out of the terminal."""

from __future__ import annotations

import csv
import logging

from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


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
