"""Exact resume: the loader position, every RNG and the loggers' identity travel in every checkpoint.

Lightning restores weights, optimizers and loop counters, but not where the training loader stood in its epoch (a
plain DataLoader has no state) nor the random-number states. This callback stores, in each checkpoint:

- `resume_position`: the epoch and the number of its batches already trained (the next epoch and 0 when the epoch
  was done). On load, the datamodule (`brainlab.core.resume.ResumableData`) is told before it builds the training
  loader, whose seeded sampler then skips those batches: the resumed run sees the batches the uninterrupted run
  would have seen next, across later epochs too (each epoch's order depends only on the seed and the epoch).
- `rng_states`: torch, numpy, python and CUDA states of every rank (one entry per rank under torch.distributed).
  They are set back at `on_train_start`, the last hook before the first resumed batch, so nothing Lightning does
  while restarting (building loaders, sanity checks) draws from them. Loader workers need no state: each sample is
  fetched under RNGs seeded by (seed, epoch, index) (`brainlab.data.sampler.SeededItems`).
- `logger_identity`: the W&B run id and the TensorBoard / CSV log dirs, which `brainlab.loggers.continue_loggers`
  reads to continue them in the resumed run.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist

from brainlab.core.resume import ResumableData

log = logging.getLogger(__name__)


def numpy_state_to_tensors() -> dict[str, Any]:
    """numpy's global RNG state as tensors and numbers (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def numpy_state_from_tensors(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


def rng_states() -> dict[str, Any]:
    """This process's random-number states: torch, numpy, python, CUDA."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": numpy_state_to_tensors(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state_from_tensors(states["numpy"])
    random.setstate(states["python"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def this_rank_states(saved: Any) -> dict[str, Any] | None:
    """This rank's entry of saved `rng_states` (one per rank; a run resumed on more ranks reuses rank 0's)."""
    if isinstance(saved, list):
        if not saved:
            return None
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        return saved[rank] if rank < len(saved) else saved[0]
    return saved or None


def training_position(trainer: pl.Trainer) -> dict[str, int]:
    """Where the next training batch comes from: the epoch and how many of its batches are done."""
    epoch = int(trainer.current_epoch)
    done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
    per_epoch = trainer.num_training_batches
    if isinstance(per_epoch, int | float) and per_epoch != float("inf") and done >= per_epoch:
        epoch, done = epoch + 1, 0
    return {"epoch": epoch, "batches": done}


def logger_identity(trainer: pl.Trainer) -> dict[str, dict[str, Any]]:
    """What names each logger's run: W&B's run id, the log dir of file loggers."""
    found: dict[str, dict[str, Any]] = {}
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            found["wandb"] = {"id": logger.version, "project": getattr(logger, "name", None)}
        elif kind == "TensorBoardLogger":
            found["tensorboard"] = {"log_dir": logger.log_dir}
        elif kind == "CSVLogger":
            found["csv"] = {"log_dir": logger.log_dir}
    return found


class ResumeState(pl.Callback):
    """Saves and restores the loader position, RNG states and logger identity (see the module docstring)."""

    def __init__(self) -> None:
        self.pending_rng: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        states = rng_states()
        if distributed():  # every rank runs this hook: gather each rank's states
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)
            checkpoint["rng_states"] = gathered
        else:
            checkpoint["rng_states"] = states
        checkpoint["resume_position"] = training_position(trainer)
        checkpoint["logger_identity"] = logger_identity(trainer)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self.pending_rng = this_rank_states(checkpoint.get("rng_states"))
        position = checkpoint.get("resume_position")
        datamodule = trainer.datamodule
        if position and isinstance(datamodule, ResumableData):
            datamodule.resume_training_at(position["epoch"], position["batches"])
            if position["batches"]:
                log.info("resuming epoch %d after its first %d batches", position["epoch"], position["batches"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pending_rng is not None:
            set_rng_states(self.pending_rng)
            self.pending_rng = None
