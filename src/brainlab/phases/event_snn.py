"""Phase 2: event-driven SNN classification (cross-entropy on the output summed over time)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from brainlab.core.checks import positive_int
from brainlab.phases.base import BestValAccuracyPhase, per_stage


class EventSNN(BestValAccuracyPhase):
    """Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `val/acc_best`, `test/loss`, `test/acc`."""

    logged_metrics = (*per_stage("loss", "acc"), "val/acc_best")

    def __init__(self, num_classes: int, **base: Any) -> None:
        positive_int("model.num_classes", num_classes)
        super().__init__(**base)
        stages = ("train", "val", "test")  # ModuleDict keys may not shadow nn.Module.train: suffix them
        self.acc = torch.nn.ModuleDict(
            {f"{s}_": MulticlassAccuracy(num_classes=num_classes, average="micro") for s in stages}
        )
        self.mean_loss = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in stages})

    def step(self, batch: Any, stage: str) -> torch.Tensor:
        frames, targets = batch
        logits = self(frames).sum(dim=1)  # (batch, time, classes) -> (batch, classes)
        loss = F.cross_entropy(logits, targets)
        self.mean_loss[f"{stage}_"](loss.detach())
        self.acc[f"{stage}_"](logits.detach(), targets)
        on_step = stage == "train"
        self.log(f"{stage}/loss", self.mean_loss[f"{stage}_"], on_step=on_step, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", self.acc[f"{stage}_"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def val_accuracy(self) -> torch.Tensor:
        return self.acc["val_"].compute()
