"""Pictures of every SNN run: spike rasters, confusion matrix, firing-rate histograms (PNG + W&B images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from pytorch_lightning.loggers import WandbLogger  # noqa: E402
from torch.utils.hooks import RemovableHandle  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

from brainlab.snn.factory import spiking_layers  # noqa: E402

#: every figure is saved at this size (pixels = inches x dpi), so viewers and tests know what to expect
FIG_INCHES, DPI = (8.0, 6.0), 100


def save_figure(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


class SNNMedia(pl.Callback):
    """At test time, for nets with spiking layers: `media/raster.png` (the first samples' spikes in every
    spiking layer), `media/confusion_matrix.png`, `media/firing_rates.png` (per-neuron rate histogram per layer);
    logged as W&B images when a W&B logger is present."""

    def __init__(self, output_dir: str, n_samples: int = 4, num_classes: int | None = None) -> None:
        self.media_dir = Path(output_dir) / "media"
        self.n_samples = n_samples
        self.num_classes = num_classes
        self.files: list[Path] = []
        self._handles: list[RemovableHandle] = []
        self._raster: dict[str, np.ndarray] = {}
        self._counts: dict[str, torch.Tensor] = {}
        self._steps: dict[str, int] = {}
        self._confusion: MulticlassConfusionMatrix | None = None
        self._last_output: torch.Tensor | None = None

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        layers = spiking_layers(pl_module)
        if not layers:
            return
        self._raster, self._counts, self._steps = {}, {}, {}
        for name, layer in layers:
            self._handles.append(layer.register_forward_hook(self._record(name)))
        if self.num_classes:
            self._confusion = MulticlassConfusionMatrix(num_classes=self.num_classes)
            self._handles.append(pl_module.register_forward_hook(self._keep_output))

    def _keep_output(self, _m: torch.nn.Module, _args: Any, out: Any) -> None:
        self._last_output = out.detach() if isinstance(out, torch.Tensor) else None

    def _record(self, name: str) -> Any:
        def hook(_m: torch.nn.Module, _args: Any, out: torch.Tensor) -> None:
            spikes = out.detach().float().flatten(start_dim=2).cpu()  # (batch, time, neurons)
            if name not in self._raster:
                self._raster[name] = spikes[: self.n_samples].numpy()
            self._counts[name] = self._counts.get(name, 0) + spikes.sum(dim=(0, 1))
            self._steps[name] = self._steps.get(name, 0) + spikes.shape[0] * spikes.shape[1]

        return hook

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        logits, self._last_output = self._last_output, None
        if self._confusion is None or logits is None or not isinstance(batch, list | tuple) or len(batch) < 2:
            return
        logits = logits.sum(dim=1) if logits.dim() == 3 else logits  # (batch, time, classes): summed over time
        self._confusion.update(logits.argmax(dim=-1).cpu(), batch[1].cpu())

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if not self._raster or not trainer.is_global_zero:
            return
        self.files = [self.raster(), self.firing_rates()]
        if self._confusion is not None:
            self.files.append(self.confusion())
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for path in self.files:
                    logger.log_image(key=f"media/{path.stem}", images=[str(path)])

    def raster(self) -> Path:
        names = list(self._raster)
        n = min(self.n_samples, next(iter(self._raster.values())).shape[0])
        fig, axes = plt.subplots(len(names), n, figsize=FIG_INCHES, squeeze=False, sharex=True)
        for row, name in enumerate(names):
            for col in range(n):
                t, neuron = np.nonzero(self._raster[name][col])
                axes[row][col].scatter(t, neuron, s=1, c="k")
                axes[row][col].set_title(f"sample {col}" if row == 0 else "", fontsize=8)
            axes[row][0].set_ylabel(name, fontsize=7)
        fig.supxlabel("time step")
        fig.suptitle("spike raster (test samples)")
        return save_figure(fig, self.media_dir / "raster.png")

    def firing_rates(self) -> Path:
        fig, ax = plt.subplots(figsize=FIG_INCHES)
        for name, counts in self._counts.items():
            ax.hist((counts / self._steps[name]).numpy(), bins=30, alpha=0.5, label=name)
        ax.set_xlabel("spikes per neuron per time step")
        ax.set_ylabel("neurons")
        ax.legend(fontsize=8)
        ax.set_title("firing rates per layer (test set)")
        return save_figure(fig, self.media_dir / "firing_rates.png")

    def confusion(self) -> Path:
        matrix = self._confusion.compute().numpy()
        fig, ax = plt.subplots(figsize=FIG_INCHES)
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("confusion matrix (test set)")
        return save_figure(fig, self.media_dir / "confusion_matrix.png")
