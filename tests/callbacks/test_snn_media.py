"""SNN pictures: rasters, firing-rate histograms and confusion matrices that read well for shallow and deep nets
and few or many classes, written as PNG and logged to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from brainlab.callbacks.snn_media import (
    MAX_LAYERS,
    SNNMedia,
    confusion_figure,
    firing_rate_figure,
    raster_figure,
    text_colour,
)
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.sinabs_backend import neuron


class Phase(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = FeedForwardSNN([12], 4, neuron, hidden_dim=16, n_hidden=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def texts(fig: plt.Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_callback_writes_each_picture_and_logs_it_to_tensorboard(tmp_path: Path) -> None:
    torch.manual_seed(0)
    logger = TensorBoardLogger(save_dir=tmp_path / "tb", name=None, version="")
    datamodule = SimpleNamespace(classes=["yes", "no", "up", "down"])
    trainer = SimpleNamespace(loggers=[logger], is_global_zero=True, global_step=7, datamodule=datamodule)
    module, media = Phase(), SNNMedia(str(tmp_path), n_samples=3, num_classes=4)
    media.on_test_epoch_start(trainer, module)
    with torch.no_grad():
        for _ in range(2):
            x, y = (torch.rand(5, 10, 12) < 0.5).float() * 3, torch.randint(0, 4, (5,))
            module(x)
            media.on_test_batch_end(trainer, module, None, (x, y), 0)
    media.on_test_epoch_end(trainer, module)
    names = sorted(p.name for p in media.files)
    assert names == ["confusion_matrix.png", "firing_rates.png", "raster.png"]
    for path in media.files:
        assert path.parent == tmp_path / "media" and path.read_bytes()[:4] == b"\x89PNG"
    assert len(media._labels) == 3 and len(media._predictions) == 3, "the raster's samples carry their classes"
    assert int(media._confusion.compute().sum()) == 10
    (events,) = (tmp_path / "tb").rglob("events.out.tfevents.*")
    data = events.read_bytes()
    for tag in (b"media/raster", b"media/firing_rates", b"media/confusion_matrix"):
        assert tag in data, f"{tag!r} is a TensorBoard image"
    assert not module._forward_hooks and not module.net.layers[1]._forward_hooks, "hooks removed"


def test_raster_of_a_deep_net_shows_layers_in_rows_every_step_and_empty_panels() -> None:
    rng = np.random.default_rng(0)
    rasters = {f"net.blocks.{i}.sn": (rng.random((2, 4, 300)) < 0.2).astype(np.float32) for i in range(17)}
    rasters["net.blocks.3.sn"][:] = 0
    fig = raster_figure(rasters, labels=[1, 0], predictions=[1, 1], class_names=["cat", "dog"])
    axes = np.array(fig.axes).reshape(MAX_LAYERS, 2)
    assert "12 of 17 spiking layers" in fig._suptitle.get_text()
    labels = [ax.get_ylabel() for ax in axes[:, 0]]
    assert labels[0].startswith("blocks.0.sn\n128 of 300") and labels[-1].startswith("blocks.16.sn")
    assert all(ax.get_xlim() == (-0.5, 3.5) and not len(ax.get_yticks()) for ax in axes.flat)
    assert [ax.get_title() for ax in axes[0]] == ["class dog\npredicted dog", "class cat\npredicted dog"]
    assert "no spikes" in texts(fig), "the silent layer says so"
    plt.close(fig)


def test_raster_of_a_shallow_net_without_labels() -> None:
    fig = raster_figure({"layers.1": np.ones((4, 50, 8)), "layers.3": np.zeros((4, 50, 8))})
    assert len(fig.axes) == 8 and fig.axes[0].get_title() == "sample 0"
    assert fig.axes[0].get_ylabel() == "layers.1\n8 neurons"
    assert fig.axes[-1].get_xlim() == (-0.5, 49.5)
    plt.close(fig)


def test_firing_rates_one_panel_per_layer_and_a_silent_net() -> None:
    rates = {f"layers.{i}": np.linspace(0, 0.3, 64) for i in range(20)}
    fig = firing_rate_figure(rates)
    assert len(fig.axes) == MAX_LAYERS and not fig.axes[0].get_legend()
    assert fig.axes[0].get_xlim() == pytest.approx((0.0, 0.315))
    plt.close(fig)
    silent = firing_rate_figure({"layers.1": np.zeros(32), "layers.3": np.zeros(32)})
    assert all(ax.get_xlim() == (0.0, 1.0) and not ax.patches for ax in silent.axes), "no bar on a -0.4..0.4 axis"
    assert texts(silent).count("no spikes") == 2 and "no layer spiked" in silent._suptitle.get_text()
    plt.close(silent)


@pytest.mark.parametrize("k", [2, 4, 11])
def test_confusion_matrix_names_and_counts_every_class(k: int) -> None:
    rng = np.random.default_rng(k)
    matrix = rng.integers(0, 9, (k, k)) + np.diag(np.full(k, 40))
    names = [f"class_{i}" for i in range(k)] if k == 11 else None
    fig = confusion_figure(matrix, names)
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == list(range(k)) and list(ax.get_yticks()) == list(range(k)), "integer ticks"
    assert [t.get_text() for t in ax.get_xticklabels()] == (names or [str(i) for i in range(k)])
    assert sorted(int(t) for t in texts(fig)) == sorted(matrix.ravel().tolist()), "a count in every cell"
    assert f"{matrix.sum()} samples" in ax.get_title()
    plt.close(fig)


def test_confusion_matrix_of_many_classes_has_no_cell_text() -> None:
    fig = confusion_figure(np.eye(40, dtype=int) * 3)
    assert not texts(fig) and all(float(t).is_integer() for t in fig.axes[0].get_xticks())
    plt.close(fig)


def test_text_colour_reads_on_dark_and_light_cells() -> None:
    assert text_colour((1.0, 1.0, 0.0, 1.0)) == "black"  # viridis' yellow
    assert text_colour((0.27, 0.0, 0.33, 1.0)) == "white"  # viridis' purple


def test_bench_heatmap_labels_and_log_axes_read_plainly() -> None:
    from brainlab.bench.plots import label_cells, log_axis, log_value_axis

    fig, (heat, lines) = plt.subplots(1, 2)
    data = [[1.0, 20.0], [float("nan"), 10.0]]
    image = heat.imshow(data, cmap="viridis")
    label_cells(heat, image, data, lambda v: f"{v:.1f}x")
    colours = {t.get_text(): t.get_color() for t in heat.texts}
    assert colours == {"1.0x": "white", "20.0x": "black", "–": "0.5", "10.0x": "white"}, "black on yellow"
    lines.plot([1, 2, 4], [0.5, 3.0, 40.0])
    log_axis(lines, "x", [1, 2, 4], base=2)
    log_value_axis(lines, "y")
    fig.canvas.draw()
    assert [t.get_text() for t in lines.get_xticklabels()] == ["1", "2", "4"], "not 2x10^0"
    shown = [t.get_text() for t in lines.get_yticklabels() if t.get_text()]
    assert {"1", "10"} <= set(shown) and not any("10^" in s or "times" in s for s in shown)
    plt.close(fig)


def test_a_failed_picture_write_is_a_warning_and_the_metrics_are_kept(make_cfg, monkeypatch) -> None:
    from pathlib import Path

    from brainlab.callbacks import snn_media
    from brainlab.train import run

    def full_disk(path, mode="wb", **kwargs):  # noqa: ANN001, ANN003, ANN202
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(snn_media, "atomic_open", full_disk)
    cfg = make_cfg("trainer.limit_train_batches=2", keep=("snn_media",))
    with pytest.warns(UserWarning, match="not written .*No space left on device.*metrics are kept"):
        metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert "test/acc" in metrics and "test/acc" in (out / "metrics.json").read_text()
    assert not list((out / "media").glob("*.png")), "no picture, and no truncated one under its final name"
