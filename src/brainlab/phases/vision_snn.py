"""Phase 1: spiking vision (image classification by an SNN whose readout is averaged over time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.phases.base import BestValAccuracyPhase, as_container, per_stage


class VisionSNN(BestValAccuracyPhase):
    """Cross-entropy on the time-averaged readout of `net(images) -> (batch, time, classes)`.

    Logs `<stage>/loss`, `<stage>/acc` (top-1), `<stage>/acc_top5` (when there are more than 5 classes) and
    `val/acc_best`. `presets` holds alternative net configs to pick with `model.net=${model.presets.<name>}`
    (it is not used here). `num_threads`: torch CPU threads while fitting/testing (None: torch's default).
    """

    logged_metrics = (*per_stage("loss", "acc", "acc_top5"), "val/acc_best")

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, presets: Mapping[str, Any] | None = None,
                 num_threads: int | None = None, **base: Any) -> None:
        positive_int("model.num_classes", num_classes)
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"model.label_smoothing must be in [0, 1), got {label_smoothing!r}")
        super().__init__(**base)
        if "presets" in self.hparams:  # plain containers: checkpoints load with torch's weights_only
            self.hparams["presets"] = as_container(self.hparams["presets"])
        self.label_smoothing = float(label_smoothing)
        self.num_threads = num_threads  # Phase.limit_threads applies it while fitting/testing
        metrics = {"acc": MulticlassAccuracy(num_classes=num_classes, average="micro")}
        if num_classes > 5:
            metrics["acc_top5"] = MulticlassAccuracy(num_classes=num_classes, average="micro", top_k=5)
        stages = ("train", "val", "test")  # ModuleDict keys may not shadow nn.Module.train: suffix them
        self.metrics = torch.nn.ModuleDict({f"{s}_": MetricCollection(metrics, prefix=f"{s}/").clone()
                                            for s in stages})
        self.mean_loss = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in stages})

    def step(self, batch: Any, stage: str) -> torch.Tensor:
        images, targets = batch
        out = self(images)
        logits = out.mean(dim=1) if out.dim() == 3 else out  # (batch, time, classes) -> (batch, classes)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        self.mean_loss[f"{stage}_"](loss.detach())
        self.metrics[f"{stage}_"](logits.detach(), targets)
        self.log(f"{stage}/loss", self.mean_loss[f"{stage}_"], on_step=stage == "train", on_epoch=True,
                 prog_bar=True)
        self.log_dict(self.metrics[f"{stage}_"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def val_accuracy(self) -> torch.Tensor:
        return self.metrics["val_"]["acc"].compute()
