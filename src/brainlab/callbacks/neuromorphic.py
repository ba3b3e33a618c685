"""Neuromorphic metrics for every SNN run: SynOps, MACs, energy, sparsity, footprint (test stage)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from brainlab.metrics.neuromorphic import connection_sparsity, count_costs, footprint_bytes
from brainlab.snn.factory import spiking_layers


class NeuromorphicMetrics(pl.Callback):
    """Counts costs over the test set and logs `test/synops`, `test/macs`, `test/energy_uj`,
    `test/activation_sparsity`, `test/connection_sparsity`, `test/footprint_bytes` (per sample).

    Writes `neuromorphic.json` / `neuromorphic.md` into the run dir (targets.md includes the latter).
    Runs only for nets with spiking layers.
    """

    report_files = ["neuromorphic.md"]

    def __init__(self, output_dir: str, e_ac_pj: float = 0.9, e_mac_pj: float = 4.6, source: str = "") -> None:
        self.output_dir = Path(output_dir)
        self.e_ac_pj, self.e_mac_pj, self.source = e_ac_pj, e_mac_pj, source
        self._stack: ExitStack | None = None
        self._counts: Any = None
        self.summary: dict[str, Any] = {}

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not spiking_layers(pl_module):
            return
        self._stack = ExitStack()
        self._counts = self._stack.enter_context(count_costs(pl_module))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stack is None:
            return
        self._stack.close()
        self._stack = None
        summary = self._counts.summary(self.e_ac_pj, self.e_mac_pj)
        summary["connection_sparsity"] = connection_sparsity(pl_module)
        summary["footprint_bytes"] = footprint_bytes(pl_module)
        summary["energy_per_op_pj"] = {"ac": self.e_ac_pj, "mac": self.e_mac_pj, "source": self.source}
        self.summary = summary
        for key in ("synops", "macs", "energy_uj", "activation_sparsity", "connection_sparsity", "footprint_bytes"):
            pl_module.log(f"test/{key}", float(summary[key]), sync_dist=True)
        if trainer.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "neuromorphic.json").write_text(json.dumps(summary, indent=2))
            (self.output_dir / "neuromorphic.md").write_text(to_markdown(summary))


def to_markdown(summary: dict[str, Any]) -> str:
    energy = summary["energy_per_op_pj"]
    lines = [
        "| per sample | value |", "|---|---|",
        f"| SynOps | {summary['synops']:.4g} |",
        f"| MACs | {summary['macs']:.4g} |",
        f"| energy (µJ) | {summary['energy_uj']:.4g} |",
        f"| activation sparsity | {summary['activation_sparsity']:.4f} |",
        f"| connection sparsity | {summary['connection_sparsity']:.4f} |",
        f"| footprint (bytes) | {summary['footprint_bytes']} |",
    ]
    lines += [f"| sparsity {k} | {v:.4f} |" for k, v in summary["activation_sparsity_per_layer"].items()]
    note = f"\nEnergy: {energy['ac']} pJ per accumulate, {energy['mac']} pJ per MAC ({energy['source']}).\n"
    return "\n".join(lines) + "\n" + note
