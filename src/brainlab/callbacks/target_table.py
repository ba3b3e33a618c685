"""The target table: what a run achieved against `conf/targets.yaml`, written as targets.md/json."""

from __future__ import annotations

import fnmatch
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from brainlab.core.atomic import atomic_write_text
from brainlab.core.datamodule import full_dataset
from brainlab.core.errors import ConfigError

log = logging.getLogger(__name__)

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"


def data_identity(datamodule: object) -> str | None:
    """The string naming a run's data: a datamodule's `dataset_id` (a method of the cached event/image modules,
    an attribute of the Minari one), None when it has none."""
    ident = getattr(datamodule, "dataset_id", None)
    if callable(ident):
        ident = ident()
    return ident if isinstance(ident, str) else None


def row_data_matches(row: Mapping[str, Any], datamodule: object) -> bool:
    """Whether the run's data is the data the row describes (its `data` pattern, fnmatch; no pattern: any)."""
    pattern = row.get("data")
    if not pattern:
        return True
    ident = data_identity(datamodule)
    return ident is not None and fnmatch.fnmatchcase(ident, str(pattern))


def row_status(row: Mapping[str, Any], achieved: float | None, measured: bool) -> str:
    """`met` / `not met` against the row's value and direction, or `not measured`."""
    if achieved is None or not measured or math.isnan(achieved):
        return NOT_MEASURED
    higher = row.get("mode", "max") == "max"
    return MET if (achieved >= row["value"] if higher else achieved <= row["value"]) else NOT_MET


def build_table(
    table: Mapping[str, Mapping[str, Any]], target: str | None, metrics: Mapping[str, float], measured: bool,
    reason: str = "",
) -> list[dict[str, Any]]:
    """One dict per row of the table; only the run's own row can be measured."""
    rows = []
    for key, row in table.items():
        achieved = metrics.get(row["metric"]) if key == target else None
        status = row_status(row, achieved, measured)
        gap = None if status == NOT_MEASURED else achieved - row["value"]
        rows.append({
            "id": key, "phase": row.get("phase"), "metric": row["metric"], "target": row["value"],
            "achieved": achieved, "gap": gap, "status": status,
            "note": reason if key == target and status == NOT_MEASURED else "",
            "source": row.get("source", ""),
        })
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub markdown."""
    def fmt(v: Any) -> str:
        return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

    head = "| id | phase | metric | target | achieved | status | source |\n|---|---|---|---|---|---|---|\n"
    lines = []
    for r in rows:
        status = r["status"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {r['id']} | {fmt(r['phase'])} | {r['metric']} | {fmt(r['target'])} | "
                     f"{fmt(r['achieved'])} | {status} | {r['source']} |")
    return head + "\n".join(lines) + "\n"


class TargetTable(pl.Callback):
    """After `trainer.test`, compares the run's metric with its target row and writes the table.

    A phase may list extra report files it writes into the run dir (`report_files`, e.g. a per-task table);
    targets.md links them. A row is `not measured` unless the whole published test set was used: a datamodule reporting
    `is_full_dataset = False` (fixtures, partial copies) or `limit_test_batches` below 1.0 says so. A row is filled
    only by the data it describes: a row's `data` pattern (fnmatch) must match the datamodule's `dataset_id` (the
    synthetic row only its documented set, `antmaze` only `D4RL/antmaze/*`). Debug runs (`debug=true`, which every
    `debug=` overlay sets, or `trainer.overfit_batches`) never fill a row.
    """

    def __init__(self, table: Mapping[str, Mapping[str, Any]], target: str | None, output_dir: str,
                 debug: bool = False) -> None:
        self.table = {k: dict(v) for k, v in table.items()}
        if target is not None and target not in self.table:
            raise ConfigError(f"target={target!r} is not a row of conf/targets.yaml; rows: {sorted(self.table)}")
        for key, row in self.table.items():
            if "metric" not in row or "value" not in row:
                raise ConfigError(f"conf/targets.yaml row {key!r} needs `metric` and `value`")
        self.target = target
        self.debug = bool(debug)
        self.output_dir = Path(output_dir)
        self.rows: list[dict[str, Any]] = []

    def measured(self, trainer: pl.Trainer) -> tuple[bool, str]:
        """Whether the test metric is the dataset's own, and why not."""
        datamodule = trainer.datamodule
        if self.debug:
            return False, "a debug run"
        if trainer.overfit_batches:
            return False, "an overfit run"
        limit = trainer.limit_test_batches
        if trainer.fast_dev_run or (isinstance(limit, float) and limit < 1.0) or isinstance(limit, int):
            return False, "test set limited"
        row = self.table.get(self.target) if self.target is not None else None
        if row is not None and not row_data_matches(row, datamodule):
            return False, f"the run's data is not this row's ({row['data']})"
        if datamodule is not None and not full_dataset(datamodule):
            return False, "not the full dataset"
        return True, ""

    def details(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        """The report files the phase and the other callbacks wrote (`report_files`), inlined."""
        names = [*getattr(pl_module, "report_files", [])]
        for callback in trainer.callbacks:
            names += [n for n in getattr(callback, "report_files", []) if n not in names]
        parts = [f"\n### {n}\n\n{(self.output_dir / n).read_text()}" for n in names if (self.output_dir / n).is_file()]
        return "".join(parts)

    def log_table(self, trainer: pl.Trainer) -> None:
        """The table as a W&B Table (for W&B loggers)."""
        columns = ["id", "phase", "metric", "target", "achieved", "status", "source"]
        data = [[r[c] if c != "achieved" or r[c] is not None else float("nan") for c in columns] for r in self.rows]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="targets", columns=columns, data=data)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        measured, reason = self.measured(trainer)
        self.rows = build_table(self.table, self.target, metrics, measured, reason)
        if trainer.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output_dir / "targets.md", to_markdown(self.rows) + self.details(trainer, pl_module))
            atomic_write_text(self.output_dir / "targets.json", json.dumps(self.rows, indent=2))
        self.log_table(trainer)
        own = next((r for r in self.rows if r["id"] == self.target), None)
        if own is not None and own["gap"] is not None:
            for logger in trainer.loggers:
                logger.log_metrics({f"target/{self.target}/gap": own["gap"]}, step=trainer.global_step)
