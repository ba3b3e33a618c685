"""Firing rate per spiking layer, for any SNN phase (layers found through the backend registry)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.hooks import RemovableHandle

from brainlab.snn.factory import spiking_layers


class SpikeStats(pl.Callback):
    """Logs `<stage>/rate/<layer>` (mean spikes per neuron per time step) at the end of val/test epochs.

    `rates` keeps the last values per stage, e.g. `rates["test"]["net.layers.1"]`.
    """

    #: what it logs (`brainlab.validate` checks monitors against these)
    logged_metrics = ("val/rate/*", "test/rate/*")

    def __init__(self, stages: tuple[str, ...] = ("val", "test")) -> None:
        self.stages = tuple(stages)
        self.rates: dict[str, dict[str, float]] = {}
        self._handles: list[RemovableHandle] = []
        self._sums: dict[str, list[float]] = {}

    def _attach(self, pl_module: pl.LightningModule) -> None:
        self._detach()
        self._sums = {}
        for name, layer in spiking_layers(pl_module):
            self._sums[name] = [0.0, 0.0]
            self._handles.append(layer.register_forward_hook(self._hook(name)))

    def _hook(self, name: str) -> Any:
        def record(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            spikes = output.detach()
            self._sums[name][0] += float(spikes.float().sum())
            self._sums[name][1] += spikes.numel()

        return record

    def _detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _finish(self, stage: str, pl_module: pl.LightningModule) -> None:
        self._detach()
        rates = {name: s / n for name, (s, n) in self._sums.items() if n}
        self.rates[stage] = rates
        for name, rate in rates.items():
            pl_module.log(f"{stage}/rate/{name}", rate, sync_dist=True)
        if rates:
            pl_module.log(f"{stage}/rate/mean", sum(rates.values()) / len(rates), sync_dist=True)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "val" in self.stages and not trainer.sanity_checking:
            self._attach(pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "val" in self.stages and not trainer.sanity_checking:
            self._finish("val", pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "test" in self.stages:
            self._attach(pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "test" in self.stages:
            self._finish("test", pl_module)
