"""Neuromorphic metrics of every SNN run at test time, with NeuroBench's definitions (`brainlab.metrics.neuromorphic`).

Under DDP every rank counts its share of the test set; the raw totals are summed across ranks before the per-sample
figures are formed, so the figures equal a single-process run on the same data. When the test set does not divide by
the world size, Lightning's distributed sampler pads it with repeated samples: those are counted too, and the report
says how many (`padded_samples`).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_warn

from brainlab.metrics.neuromorphic import CostCounts, activity_warnings, count_costs, finish
from brainlab.snn.factory import spiking_layers
from brainlab.snn.plug import backends

#: logged as `test/<key>` (per sample)
LOGGED = (
    "synops", "macs", "dense_ops", "synops_spike_count", "energy_uj", "activation_sparsity", "connection_sparsity",
    "footprint_bytes", "membrane_updates",
)


class NeuromorphicMetrics(pl.Callback):
    """Counts costs over the test set and logs `test/synops` (effective accumulates of spike inputs), `test/macs`
    (effective multiply-accumulates of non-spike inputs), `test/dense_ops`, `test/synops_spike_count`,
    `test/energy_uj`, `test/activation_sparsity`, `test/connection_sparsity`, `test/footprint_bytes`,
    `test/membrane_updates` (per sample; definitions in `brainlab.metrics.neuromorphic`).

    Writes `neuromorphic.json` / `neuromorphic.md` into the run dir (targets.md includes the latter), once (rank 0).
    Warns about, and lists in the report, spiking layers that are silent or saturated. Runs only for nets with
    spiking layers.
    """

    #: what it logs (`brainlab.validate` checks monitors against these)
    logged_metrics = tuple(f"test/{name}" for name in LOGGED)

    report_files = ["neuromorphic.md"]

    def __init__(self, output_dir: str, e_ac_pj: float = 0.9, e_mac_pj: float = 4.6, source: str = "") -> None:
        self.output_dir = Path(output_dir)
        self.e_ac_pj, self.e_mac_pj, self.source = e_ac_pj, e_mac_pj, source
        self._stack: ExitStack | None = None
        self._counts: CostCounts | None = None
        self.summary: dict[str, Any] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # A spawned DDP process (ddp_spawn on CPU) unpickles the net without importing the backend modules, whose
        # import registers their layer classes as spiking: without this, no spiking layer is found there.
        backends()

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not spiking_layers(pl_module):
            return
        self._stack = ExitStack()
        self._counts = self._stack.enter_context(count_costs(pl_module))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stack is None or self._counts is None:
            return
        self._stack.close()
        self._stack = None
        counts = self._counts
        if trainer.world_size > 1:  # sum the raw totals over ranks: every rank then holds the global figures
            total = trainer.strategy.reduce(counts.as_tensor(pl_module.device), reduce_op="sum")
            counts.load_tensor(total.cpu())
        summary = finish(counts, pl_module, self.e_ac_pj, self.e_mac_pj)
        summary["energy_per_op_pj"]["source"] = self.source
        summary["padded_samples"] = padded_samples(trainer, summary["samples"])
        summary["warnings"] = activity_warnings(summary)
        self.summary = summary
        for note in summary["warnings"]:
            rank_zero_warn(note)
        for key in LOGGED:  # equal on every rank already
            pl_module.log(f"test/{key}", float(summary[key]), sync_dist=True)  # a mean of equal values
        if trainer.is_global_zero:
            write_report(summary, self.output_dir)


def padded_samples(trainer: pl.Trainer, samples: int) -> int:
    """Samples counted beyond the test set's length (the distributed sampler's padding); 0 when unknown."""
    loaders = trainer.test_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    try:
        length = sum(len(loader.dataset) for loader in loaders)
    except (TypeError, AttributeError):
        return 0
    return max(samples - length, 0)


def write_report(summary: dict[str, Any], output_dir: Path) -> Path:
    """`neuromorphic.json` + `neuromorphic.md` in `output_dir`; returns the JSON's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "neuromorphic.json").write_text(json.dumps(summary, indent=2))
    (output_dir / "neuromorphic.md").write_text(to_markdown(summary))
    return output_dir / "neuromorphic.json"


def to_markdown(summary: dict[str, Any]) -> str:
    """A NeuroBench-style table: per-sample figures, with NeuroBench's name for each where it has one."""
    energy = summary["energy_per_op_pj"]
    rows = [
        ("SynOps (effective ACs)", "Effective_ACs", f"{summary['synops']:.6g}"),
        ("MACs (effective)", "Effective_MACs", f"{summary['macs']:.6g}"),
        ("dense ops", "Dense", f"{summary['dense_ops']:.6g}"),
        ("SynOps weighted by spike count", "-", f"{summary['synops_spike_count']:.6g}"),
        ("energy (µJ)", "-", f"{summary['energy_uj']:.4g}"),
        ("membrane updates (neuron-steps)", "-", f"{summary['membrane_updates']:.6g}"),
        ("activation sparsity", "ActivationSparsity", f"{summary['activation_sparsity']:.4f}"),
        ("connection sparsity", "ConnectionSparsity", f"{summary['connection_sparsity']:.4f}"),
        ("footprint (bytes, no neuron state)", "Footprint", f"{summary['footprint_bytes']}"),
    ]
    lines = ["| per sample | NeuroBench | value |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    rates = summary.get("firing_rate_per_layer", {})
    lines += [
        f"| layer {k}: sparsity / rate | ActivationSparsityByLayer | {v:.4f} / {rates.get(k, float('nan')):.4f} |"
        for k, v in summary["activation_sparsity_per_layer"].items()
    ]
    notes = [
        f"\n{summary['samples']} test samples"
        + (f" ({summary['padded_samples']} of them repeats padded in by the distributed sampler)"
           if summary.get("padded_samples") else "") + ".",
        f"Energy: {energy['ac']} pJ per accumulate, {energy['mac']} pJ per MAC ({energy.get('source', '')}).",
        "A layer call whose input holds values outside {-1, 0, 1} (spike counts, real values) counts as MACs, as in "
        "NeuroBench.",
    ]
    notes += [f"**Warning:** {note}." for note in summary.get("warnings", [])]
    return "\n".join(lines) + "\n" + "\n\n".join(notes) + "\n"
