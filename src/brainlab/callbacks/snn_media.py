"""Pictures of every SNN run: spike rasters, confusion matrix, firing-rate histograms.

PNG files in `<run dir>/media/`, also logged as images to TensorBoard and W&B when those loggers are present.
The figure functions (`raster_figure`, `firing_rate_figure`, `confusion_figure`) take plain arrays, so they are
tested and looked at without a run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger  # noqa: E402
from torch.utils.hooks import RemovableHandle  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

from brainlab.core.atomic import atomic_open  # noqa: E402
from brainlab.snn.factory import spiking_layers  # noqa: E402

#: figures are this wide (inches) at this dpi; their height grows with the number of layers shown
FIG_WIDTH, DPI = 8.0, 100
#: deeper nets show this many spiking layers, evenly spaced from the first to the last (the title says so)
MAX_LAYERS = 12
#: neurons drawn per raster panel (evenly spaced when a layer has more; the row label says how many)
MAX_NEURONS = 128
#: confusion matrices up to this many classes print the count in every cell and name every class
MAX_CELL_TEXT = 20


def save_figure(fig: plt.Figure, path: Path) -> Path | None:
    """Write `fig` as a PNG, atomically; a failed write (full or read-only disk) is a warning, never a lost run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, dpi=DPI, format="png")
    except OSError as exc:
        warnings.warn(f"picture {path} not written ({exc}); the run's metrics are kept", stacklevel=2)
        return None
    finally:
        plt.close(fig)
    return path


def text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour `rgba` (by its relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def pick_layers(names: Sequence[str], limit: int = MAX_LAYERS) -> list[str]:
    """At most `limit` of `names`, evenly spaced, first and last always in."""
    if len(names) <= limit:
        return list(names)
    index = np.unique(np.linspace(0, len(names) - 1, limit).round().astype(int))
    return [names[i] for i in index]


def layers_note(shown: int, total: int) -> str:
    return f" ({shown} of {total} spiking layers, evenly spaced)" if shown < total else ""


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Layer names without the dotted prefix all of them share (`net.`), never down to a bare index."""
    parts = [n.split(".") for n in names]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] and not p[common + 1].isdigit() for p in parts):
        common += 1
    return {n: ".".join(p[common:]) for n, p in zip(names, parts, strict=True)}


def class_label(index: int, names: Sequence[str] | None) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def raster_figure(
    rasters: Mapping[str, np.ndarray], labels: Sequence[int] | None = None, predictions: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
) -> plt.Figure:
    """One row per spiking layer, one column per sample: `rasters[name]` is `(samples, time, neurons)` spikes.

    Columns are titled with each sample's class (and the prediction, when given); rows are labelled with the
    layer's name and neuron count; the time axis spans every step, and a layer that did not spike says so.
    """
    all_names = list(rasters)
    names = pick_layers(all_names)
    short = short_names(all_names)
    n = next(iter(rasters.values())).shape[0]
    steps = max(rasters[name].shape[1] for name in names)
    height = max(3.0, 1.0 + 0.62 * len(names))
    fig, axes = plt.subplots(len(names), n, figsize=(FIG_WIDTH, height), squeeze=False, sharex=True,
                             layout="constrained")
    for row, name in enumerate(names):
        spikes = rasters[name]
        total = spikes.shape[2]
        keep = np.unique(np.linspace(0, total - 1, min(total, MAX_NEURONS)).round().astype(int))
        for col in range(n):
            ax = axes[row][col]
            image = (spikes[col][:, keep] > 0).T.astype(float)  # (neurons, time)
            ax.imshow(image, aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0, origin="lower",
                      interpolation="nearest", extent=(-0.5, spikes.shape[1] - 0.5, -0.5, len(keep) - 0.5))
            ax.set_xlim(-0.5, steps - 0.5)
            ax.set_yticks([])
            if not image.any():
                ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", fontsize=7,
                        color="0.45")
            if row == 0:
                title = f"sample {col}"
                if labels is not None and col < len(labels):
                    title = f"class {class_label(labels[col], class_names)}"
                    if predictions is not None and col < len(predictions):
                        title += f"\npredicted {class_label(predictions[col], class_names)}"
                ax.set_title(title, fontsize=8)
        shown = f"{len(keep)} of {total}" if len(keep) < total else f"{total}"
        axes[row][0].set_ylabel(f"{short[name]}\n{shown} neurons", rotation=0, ha="right", va="center", fontsize=7)
    for ax in axes[-1]:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.tick_params(labelsize=7)
    fig.supxlabel("time step", fontsize=9)
    fig.suptitle(f"spike raster: first {n} test samples{layers_note(len(names), len(all_names))}", fontsize=10)
    return fig


def firing_rate_figure(rates: Mapping[str, np.ndarray]) -> plt.Figure:
    """Per-neuron firing rates (spikes per neuron per time step), one histogram panel per layer, shared x axis
    from 0; each panel names its layer with the mean rate and the share of silent neurons."""
    all_names = list(rates)
    names = pick_layers(all_names)
    top = max((float(rates[name].max()) for name in names if rates[name].size), default=0.0)
    silent_net = top <= 0.0
    right = 1.0 if silent_net else top * 1.05
    bins = np.linspace(0.0, right, 31)
    height = max(3.0, 1.0 + 0.7 * len(names))
    fig, axes = plt.subplots(len(names), 1, figsize=(FIG_WIDTH, height), squeeze=False, sharex=True,
                             layout="constrained")
    short = short_names(all_names)
    for ax, name in zip(axes[:, 0], names, strict=True):
        values = rates[name]
        silent = float((values <= 0).mean()) if values.size else 1.0
        if silent < 1.0:
            ax.hist(values, bins=bins, color="C0")
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.45, "no spikes", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                    color="0.45")
        note = f"{short[name]}   mean {values.mean():.3g}, silent {silent:.0%} of {values.size}"
        ax.text(0.99, 0.9, note, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        ax.set_xlim(0.0, right)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax.tick_params(labelsize=7)
    fig.supxlabel("spikes per neuron per time step", fontsize=9)
    fig.supylabel("neurons", fontsize=9)
    title = "firing rates per layer (test set)" + layers_note(len(names), len(all_names))
    fig.suptitle(title + ("\nno layer spiked" if silent_net else ""), fontsize=10)
    return fig


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str] | None = None) -> plt.Figure:
    """Rows: true class, columns: predicted; colour = share of the true class, text = counts (up to
    MAX_CELL_TEXT classes, which also get a tick and name each)."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    per_row = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, per_row, out=np.zeros(matrix.shape, dtype=float), where=per_row > 0)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 6.5), layout="constrained")
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    if k <= MAX_CELL_TEXT:
        names = [class_label(i, class_names) for i in range(k)]
        long = max(len(s) for s in names) > 3
        tick_size = 10 if k <= 10 else 8
        ax.set_xticks(range(k), names, rotation=45 if long else 0, ha="right" if long else "center",
                      rotation_mode="anchor", fontsize=tick_size)
        ax.set_yticks(range(k), names, fontsize=tick_size)
        size = 14 if k <= 4 else 9 if k <= 10 else 7
        for i in range(k):
            for j in range(k):
                colour = text_colour(image.cmap(image.norm(share[i, j]))) if matrix[i, j] else "0.6"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=size, color=colour)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else float("nan")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (test set: {total} samples, accuracy {accuracy:.1%})")
    return fig


def log_pictures(loggers: Sequence[Any], files: Sequence[Path], step: int) -> None:
    """Each PNG as an image: W&B (`log_image`) and TensorBoard (`add_image`), keyed `media/<file stem>`."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            for path in files:
                logger.log_image(key=f"media/{path.stem}", images=[str(path)])
        elif isinstance(logger, TensorBoardLogger):
            for path in files:
                pixels = plt.imread(path)[..., :3]  # RGBA floats in [0, 1] -> RGB
                logger.experiment.add_image(f"media/{path.stem}", pixels, global_step=step, dataformats="HWC")
            logger.experiment.flush()


class SNNMedia(pl.Callback):
    """At test time, for nets with spiking layers: `media/raster.png` (the first samples' spikes in every
    spiking layer, with their classes), `media/confusion_matrix.png`, `media/firing_rates.png` (per-neuron rate
    histogram per layer); logged as images to TensorBoard and W&B when those loggers are present.

    `class_names`: names for the class indices (else the datamodule's `classes`, when it has one per class)."""

    def __init__(self, output_dir: str, n_samples: int = 4, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None) -> None:
        self.media_dir = Path(output_dir) / "media"
        self.n_samples = n_samples
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else None
        self.files: list[Path] = []
        self._handles: list[RemovableHandle] = []
        self._raster: dict[str, np.ndarray] = {}
        self._counts: dict[str, torch.Tensor] = {}
        self._steps: dict[str, int] = {}
        self._labels: list[int] | None = None
        self._predictions: list[int] | None = None
        self._confusion: MulticlassConfusionMatrix | None = None
        self._last_output: torch.Tensor | None = None

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        layers = spiking_layers(pl_module)
        if not layers:
            return
        self._raster, self._counts, self._steps = {}, {}, {}
        self._labels = self._predictions = None
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
        if logits is None or not isinstance(batch, list | tuple) or len(batch) < 2:
            return
        targets = batch[1]
        if not isinstance(targets, torch.Tensor) or targets.dim() != 1 or targets.is_floating_point():
            return
        logits = logits.sum(dim=1) if logits.dim() == 3 else logits  # (batch, time, classes): summed over time
        if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
            return
        predicted = logits.argmax(dim=-1).cpu()
        if self._labels is None:  # the raster shows the first batch's samples
            self._labels = targets[: self.n_samples].cpu().tolist()
            self._predictions = predicted[: self.n_samples].tolist()
        if self._confusion is not None:
            self._confusion.update(predicted, targets.cpu())

    def names(self, trainer: pl.Trainer) -> list[str] | None:
        """The class names: given, or the datamodule's `classes` when it holds one name per class."""
        if self.class_names:
            return self.class_names
        classes = getattr(getattr(trainer, "datamodule", None), "classes", None)
        if isinstance(classes, list | tuple) and all(isinstance(c, str) for c in classes) and (
                self.num_classes is None or len(classes) == self.num_classes):
            return list(classes)
        return None

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if not self._raster or not trainer.is_global_zero:
            return
        names = self.names(trainer)
        files = [self.raster(names), self.firing_rates()]
        if self._confusion is not None:
            files.append(self.confusion(names))
        self.files = [f for f in files if f is not None]
        log_pictures(trainer.loggers, self.files, trainer.global_step)

    def raster(self, class_names: Sequence[str] | None = None) -> Path | None:
        fig = raster_figure(self._raster, self._labels, self._predictions, class_names)
        return save_figure(fig, self.media_dir / "raster.png")

    def firing_rates(self) -> Path | None:
        rates = {name: (counts / self._steps[name]).numpy() for name, counts in self._counts.items()}
        return save_figure(firing_rate_figure(rates), self.media_dir / "firing_rates.png")

    def confusion(self, class_names: Sequence[str] | None = None) -> Path | None:
        fig = confusion_figure(self._confusion.compute().numpy(), class_names)
        return save_figure(fig, self.media_dir / "confusion_matrix.png")
