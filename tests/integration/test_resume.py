"""Exact resume: a run resumed from a mid-epoch step checkpoint equals the uninterrupted run step by step, across the
next epoch boundary, with 0 and 2 loader workers; resumed runs continue their loggers and say where they resumed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers.config import TINY, compose_cfg

from brainlab.train import run

# 3 training batches per epoch; a global-RNG augmentation, so the RNG states must travel too
COMMON = [
    *TINY, "trainer.deterministic=true", "seed=3", "trainer.max_epochs=2", "trainer.log_every_n_steps=1",
    "logger=csv", "test=false", "trainer.num_sanity_val_steps=0",
    "callbacks.snn_media=null", "callbacks.neuromorphic=null", "callbacks.spike_stats=null",
    "callbacks.step_checkpoint.every_n_train_steps=1",
    "+data.augment=[{_target_: brainlab.data.augment.TimeShift, max_shift: 3}]",
]


def step_losses(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "csv" / "metrics.csv") as fh:
        return {int(r["step"]): float(r["train/loss_step"]) for r in csv.DictReader(fh) if r.get("train/loss_step")}


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_a_mid_epoch_step_checkpoint_equals_the_uninterrupted_run(workers: int, tmp_path: Path) -> None:
    common = [*COMMON, f"data.num_workers={workers}"]
    straight = compose_cfg(tmp_path / "straight", common)
    run(straight)
    out = Path(straight.paths.output_dir)
    want = step_losses(out)
    assert sorted(want) == list(range(6)), "2 epochs of 3 steps, every step logged"
    saved = out / "checkpoints" / "steps" / "step0000001.ckpt"  # after the first batch of epoch 0
    assert torch.load(saved, weights_only=True)["resume_position"] == {"epoch": 0, "batches": 1}

    resumed = compose_cfg(tmp_path / "resumed", [*common, f"ckpt_path={saved}"])
    run(resumed)
    got = step_losses(Path(resumed.paths.output_dir))
    assert sorted(got) == [1, 2, 3, 4, 5], "the resumed run starts at the saved step"
    for step in got:  # bit-identical, through the next epoch
        assert got[step] == want[step], f"step {step}: {got[step]!r} resumed vs {want[step]!r} uninterrupted"
    a = weights(Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt")
    b = weights(out / "checkpoints" / "last.ckpt")
    for key in b:
        assert torch.equal(a[key], b[key]), key
    record = json.loads((Path(resumed.paths.output_dir) / "record" / "run.json").read_text())
    assert record["resumed_from"] == str(saved)


def test_a_resumed_run_continues_its_loggers(tmp_path: Path) -> None:
    from brainlab.loggers import continue_loggers

    ckpt = tmp_path / "step.ckpt"
    torch.save({"logger_identity": {"wandb": {"id": "abc123"}, "tensorboard": {"log_dir": "/runs/a/tensorboard"}}},
               ckpt)
    cfg = compose_cfg(tmp_path / "resumed", ["logger=many"])
    assert len(continue_loggers(cfg.logger, ckpt)) == 2
    assert cfg.logger.wandb.id == "abc123" and cfg.logger.wandb.resume == "allow"
    assert cfg.logger.tensorboard.save_dir == "/runs/a/tensorboard" and cfg.logger.tensorboard.version == ""
    own = compose_cfg(tmp_path / "resumed", ["logger=many", "logger.wandb.id=mine"])
    continue_loggers(own.logger, ckpt)
    assert own.logger.wandb.id == "mine", "an id the command gives wins"
