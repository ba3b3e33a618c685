"""Phase 4: multimodal sentiment through a global workspace (CMU-MOSEI).

The net (`nets/workspace.py`: `model.net.fusion=workspace|late`, `model.net.modalities`, `model.net.workspace_dim`)
regresses the sentiment score in [-3, 3]. Logged per stage: `loss`, `acc7`, `acc2_has0`, `f1_has0`,
`acc2_non0`, `f1_non0`, `mae`, `corr`, and for the workspace `win/<modality>`: the share of samples whose
workspace that modality won (most write attention over rounds and slots). At test time the wins per
sentiment class go to `workspace_wins.md` and `media/workspace_wins.png`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_only
from torchmetrics import MaxMetric, MeanMetric, MinMetric

from brainlab.core.checks import check_choice
from brainlab.core.datamodule import ModalityData, full_dataset
from brainlab.core.errors import ConfigError
from brainlab.metrics.sentiment import NAMES as SENTIMENT_NAMES
from brainlab.metrics.sentiment import SentimentMetrics, WinCounts
from brainlab.nets.workspace import winners
from brainlab.phases.base import Phase, per_stage

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")
LOSSES = ("l1", "mse")
CLASSES = tuple(range(-3, 4))


def wins_markdown(counts: torch.Tensor, modalities: tuple[str, ...], note: str = "") -> str:
    """Win shares per sentiment class (rows) and overall, as a markdown table."""
    lines = ["# Workspace wins per sentiment class", ""]
    if note:
        lines += [note, ""]
    lines += ["| class | samples | " + " | ".join(modalities) + " |", "|---|---|" + "---|" * len(modalities)]
    rows = [(str(c), counts[i]) for i, c in enumerate(CLASSES)] + [("all", counts.sum(0))]
    for name, row in rows:
        n = float(row.sum())
        shares = " | ".join(f"{float(v) / n:.3f}" if n else "–" for v in row)
        lines.append(f"| {name} | {int(n)} | {shares} |")
    return "\n".join(lines) + "\n"


def wins_figure(counts: torch.Tensor, modalities: tuple[str, ...], path: Path) -> Path:
    """Heat map of win shares (class x modality) plus the overall bar; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = counts / counts.sum(1, keepdim=True).clamp_min(1)
    overall = counts.sum(0) / counts.sum().clamp_min(1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3.5), gridspec_kw={"width_ratios": [2, 1]})
    im = ax.imshow(shares.T.cpu().numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(7), [str(c) for c in CLASSES])
    ax.set_yticks(range(len(modalities)), modalities)
    ax.set_xlabel("sentiment class")
    ax.set_title("workspace wins per class")
    fig.colorbar(im, ax=ax)
    bx.bar(list(modalities), overall.cpu().numpy())
    bx.set_ylim(0, 1)
    bx.set_title("overall")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class WorkspacePhase(Phase):
    """Sentiment regression with MOSEI metrics and workspace win statistics."""

    #: `win/<modality>`: how often each modality won the workspace (nets with a workspace)
    logged_metrics = (*per_stage("loss", *SENTIMENT_NAMES, "win/*"), "val/acc7_best", "val/mae_best")

    report_files = ["workspace_wins.md"]

    def __init__(self, loss: str = "l1", input_dims: Mapping[str, int] | None = None, **base: Any) -> None:
        self.loss_kind = check_choice("model.loss", loss, LOSSES)
        super().__init__(**base)
        if not hasattr(self.net, "modalities") or not callable(getattr(self.net, "build", None)):
            raise ConfigError("the workspace phase needs a net with `modalities` and `build` "
                              "(model.net._target_=brainlab.nets.workspace.WorkspaceNet)")
        self.modalities: tuple[str, ...] = tuple(self.net.modalities)
        self.metrics = torch.nn.ModuleDict({f"{s}_": SentimentMetrics() for s in STAGES})
        self.wins = torch.nn.ModuleDict({f"{s}_": WinCounts(len(self.modalities)) for s in STAGES})
        self.mean_loss = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        self.val_acc7_best = MaxMetric()
        self.val_mae_best = MinMetric()
        self.test_wins: torch.Tensor | None = None
        if input_dims:
            self.net.build(dict(input_dims))

    def setup(self, stage: str) -> None:
        """Build the encoders for the datamodule's feature sizes (kept in hparams for checkpoints)."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        if not isinstance(dm, ModalityData):
            if not getattr(self.net, "input_dims", None):
                raise ConfigError("the workspace phase needs a MOSEI-style datamodule (data=mosei) or a "
                                  "checkpoint that holds model.input_dims")
            return
        dims = dict(dm.input_dims)
        self.net.build(dims)
        self.hparams["input_dims"] = dims

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.net(batch)

    def step(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        pred, info = self(batch)
        label = batch["label"]
        loss = F.l1_loss(pred, label) if self.loss_kind == "l1" else F.mse_loss(pred, label)
        key = f"{stage}_"
        self.metrics[key].update(pred, label)
        if info.get("write") is not None:
            self.wins[key].update(winners(info["write"].detach()), label)
        size = label.shape[0]
        self.mean_loss[key](loss.detach(), weight=size)
        self.log(f"{stage}/loss", self.mean_loss[key], on_step=stage == "train", on_epoch=True, prog_bar=True,
                 batch_size=size)
        return loss

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """Scores and, for the workspace, the winning modality of each sample."""
        pred, info = self(batch)
        out: dict[str, Any] = {"score": pred}
        if info.get("write") is not None:
            out["winner"] = winners(info["write"])
            out["write"] = info["write"]
        return out

    def _epoch_end(self, stage: str) -> dict[str, float]:
        key = f"{stage}_"
        if not self.metrics[key].mae.update_count:
            return {}
        values = {f"{stage}/{n}": v for n, v in self.metrics[key].compute().items()}
        self.metrics[key].reset()
        counts = self.wins[key].compute() if self.wins[key].update_count else None
        total = float(counts.sum()) if counts is not None else 0.0
        if counts is not None and total:
            values.update({f"{stage}/win/{m}": float(counts[:, i].sum()) / total
                           for i, m in enumerate(self.modalities)})
            if stage == "test":
                self.test_wins = counts.detach().cpu().clone()
        self.wins[key].reset()
        self.log_dict(values)
        return values

    def on_train_start(self) -> None:
        self.val_acc7_best.reset()
        self.val_mae_best.reset()
        dm = self.trainer.datamodule  # how many NaN/inf feature values it set to 0, on record in every logger
        if isinstance(dm, ModalityData) and dm.cleaned:
            for logger in self.trainer.loggers:
                logger.log_metrics({f"data/nonfinite_cleaned/{m}": float(n) for m, n in dm.cleaned.items()}, step=0)

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        values = self._epoch_end("val")
        if self.trainer.sanity_checking or not values:
            return
        self.val_acc7_best(values["val/acc7"])
        self.val_mae_best(values["val/mae"])
        self.log("val/acc7_best", self.val_acc7_best.compute(), prog_bar=True)
        self.log("val/mae_best", self.val_mae_best.compute())

    def on_test_epoch_end(self) -> None:
        values = self._epoch_end("test")
        if values and self.test_wins is not None:
            self.report(self.test_wins)

    @rank_zero_only
    def report(self, counts: torch.Tensor) -> None:
        """workspace_wins.md and media/workspace_wins.png in the run dir (and W&B as an image)."""
        full = full_dataset(self.trainer.datamodule)
        note = ("CMU-MOSEI standard test fold" if full else "data: not the complete CMU-MOSEI test fold "
                "(fixture or generated set): these are not MOSEI results")
        out = Path(self.trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "workspace_wins.md").write_text(wins_markdown(counts, self.modalities, note))
        png = wins_figure(counts, self.modalities, out / "media" / "workspace_wins.png")
        log.info("workspace wins per class written to %s and %s", out / "workspace_wins.md", png)
        for logger in self.trainer.loggers:
            if callable(getattr(logger, "log_image", None)):
                logger.log_image(key="test/workspace_wins", images=[str(png)])
