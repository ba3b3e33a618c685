"""Multimodal sentiment metrics (CMU-MOSI/MOSEI conventions) on top of torchmetrics.

Acc-7: both prediction and truth clipped to [-3, 3] and rounded (half to even, as numpy) into 7 classes.
Acc-2 and F1 (weighted over the two classes, as MulT/MMSA report it) in two conventions:
`has0` (negative = < 0, non-negative = >= 0, every sample) and `non0` (samples with truth 0 left out,
positive = > 0). MAE and Pearson correlation on the raw scores.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, Metric, PearsonCorrCoef
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy, MulticlassF1Score

NAMES = ("acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "mae", "corr")


def seven_class(score: torch.Tensor) -> torch.Tensor:
    """Sentiment scores -> classes 0..6 (score -3 .. +3 after clipping and rounding)."""
    return torch.round(score.clamp(-3.0, 3.0)).long() + 3


class SentimentMetrics(nn.Module):
    """`update(preds, target)` with `(B,)` scores; `compute()` -> {name: value} for NAMES."""

    def __init__(self) -> None:
        super().__init__()
        self.acc7 = MulticlassAccuracy(num_classes=7, average="micro")
        self.acc2_has0 = BinaryAccuracy()
        self.f1_has0 = MulticlassF1Score(num_classes=2, average="weighted")
        self.acc2_non0 = BinaryAccuracy()
        self.f1_non0 = MulticlassF1Score(num_classes=2, average="weighted")
        self.mae = MeanAbsoluteError()
        self.corr = PearsonCorrCoef()
        self.seen_non0 = 0

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        preds, target = preds.detach().float().reshape(-1), target.detach().float().reshape(-1)
        self.acc7(seven_class(preds), seven_class(target))
        has0_p, has0_t = (preds >= 0).long(), (target >= 0).long()
        self.acc2_has0(has0_p, has0_t)
        self.f1_has0(has0_p, has0_t)
        keep = target != 0
        if keep.any():
            non0_p, non0_t = (preds[keep] > 0).long(), (target[keep] > 0).long()
            self.acc2_non0(non0_p, non0_t)
            self.f1_non0(non0_p, non0_t)
            self.seen_non0 += int(keep.sum())
        self.mae(preds, target)
        self.corr(preds, target)

    def compute(self) -> dict[str, float]:
        out = {}
        for name in NAMES:
            if name.endswith("non0") and not self.seen_non0:
                out[name] = float("nan")
                continue
            out[name] = float(getattr(self, name).compute())
        return out

    def reset(self) -> None:
        for name in NAMES:
            getattr(self, name).reset()
        self.seen_non0 = 0


class WinCounts(Metric):
    """How often each modality wins the workspace, per 7-class sentiment class: counts `(7, M)`."""

    full_state_update = False

    def __init__(self, num_modalities: int) -> None:
        super().__init__()
        self.add_state("counts", torch.zeros(7, num_modalities), dist_reduce_fx="sum")

    def update(self, winners: torch.Tensor, target: torch.Tensor) -> None:
        classes = seven_class(target.reshape(-1))
        flat = classes * self.counts.shape[1] + winners.reshape(-1).long()
        self.counts += torch.bincount(flat, minlength=self.counts.numel()).reshape(self.counts.shape).to(
            self.counts.dtype)

    def compute(self) -> torch.Tensor:
        return self.counts
