"""A failed write (injected: the disk fills during the write) leaves the previous file intact and nothing truncated
under the final name; the NaN stop keeps the loss history."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class

import brainlab.core.atomic as atomic
from brainlab.core.atomic import atomic_write_text
from brainlab.core.errors import TrainingError
from brainlab.phases.base import Phase
from brainlab.train import run
from brainlab.utils.checkpoint_io import AtomicCheckpointIO


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, '{"old": 1}')
    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, '{"new": 2}')
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "no temp file left behind"


def test_a_checkpoint_cut_short_leaves_the_last_good_one(tmp_path: Path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 3, "w": torch.ones(4)}, path)

    def half_written(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 truncated")
        disk_full()

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError):
        io.save_checkpoint({"global_step": 6, "w": torch.zeros(4)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["global_step"] == 3
    assert os.listdir(path.parent) == ["last.ckpt"]


def test_checkpoints_of_a_run_go_through_the_atomic_io(make_cfg, monkeypatch) -> None:
    saved = []
    original = AtomicCheckpointIO.save_checkpoint
    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint",
                        lambda self, ckpt, path, storage_options=None: (saved.append(Path(path).name),
                                                                original(self, ckpt, path, storage_options)))
    cfg = make_cfg("trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "test=false",
                   "callbacks.snn_media=null", "callbacks.neuromorphic=null")
    run(cfg)
    assert "last.ckpt" in saved


def test_the_nan_stop_keeps_the_csv_loss_history(make_cfg, monkeypatch) -> None:
    cfg = make_cfg("logger=csv", "trainer.log_every_n_steps=1", "trainer.limit_val_batches=1", "trainer.max_epochs=2",
                   "callbacks.snn_media=null", "callbacks.neuromorphic=null")
    phase = get_class(cfg.model._target_)
    assert issubclass(phase, Phase)
    original = phase.step

    def step(self, batch, stage):
        loss = original(self, batch, stage)
        return loss * float("nan") if stage == "train" and self.global_step >= 4 else loss

    monkeypatch.setattr(phase, "step", step)
    with pytest.raises(TrainingError, match="became nan at step 4"):
        run(cfg)
    history = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()
    steps = [line for line in history[1:] if line.split(",")[history[0].split(",").index("train/loss_step")]]
    assert len(steps) == 4, "the losses of steps 0 to 3 are on disk"
