"""Preemption and Ctrl-C: save `preempt.ckpt` at the end of the current step, then stop with 143 / 130.

SIGTERM (a scheduler's or Kubernetes' preemption) and SIGINT (Ctrl-C) are latched while training runs; at the end
of the step (or of the validation) in which one arrived, every rank saves `<dirpath>/preempt.ckpt` and raises
`RunInterrupted`, which the entry point turns into one line and exit status 128 + signal. A second Ctrl-C stops
at once, without saving. Outside training (setup, sanity check, test) nothing is worth saving: the signal stops the
run at once, with the same exit status.

Under submitit (`hydra/launcher=slurm*`), its requeue signal (USR2, `SUBMITIT_PREEMPT_SIGNAL`) is latched the same
way; after the save it goes on to submitit's own handler, which requeues the job into the same job dir, where
`brainlab.train.run` resumes from `preempt.ckpt`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

log = logging.getLogger(__name__)

PREEMPT_NAME = "preempt.ckpt"


class RunInterrupted(BaseException):
    """A signal stopped the run (a BaseException, like KeyboardInterrupt: error handlers and sweeps let it through).

    `checkpoint` is the file saved at the signal (None when nothing was worth saving)."""

    def __init__(self, signum: int, checkpoint: Path | None = None, where: str = "") -> None:
        self.signum = int(signum)
        self.checkpoint = checkpoint
        self.where = where
        super().__init__(f"{signal.Signals(self.signum).name} {where}".strip())

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def requeue_signal() -> int | None:
    """submitit's preemption/timeout signal when this process is a submitit job, else None."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    return int(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))


class Preemption(Callback):
    """Latch SIGTERM / SIGINT (and submitit's requeue signal) during `fit`; save and stop at the next step end."""

    def __init__(self, dirpath: str | Path, filename: str = PREEMPT_NAME) -> None:
        self.dirpath = Path(dirpath)
        self.filename = filename
        self.received: int | None = None
        self.training = False
        self._saved_handlers: dict[int, Any] = {}

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    # --- signal handling -------------------------------------------------------------------------------------
    def _signals(self) -> list[int]:
        found = [signal.SIGTERM, signal.SIGINT]
        extra = requeue_signal()
        if extra is not None and extra not in found:
            found.append(extra)
        return [int(s) for s in found]

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self._signals():
            current = signal.getsignal(signum)
            if current is self._handle:
                continue
            self._saved_handlers.setdefault(signum, current)
            signal.signal(signum, self._handle)

    def release(self) -> None:
        """Give the signals back to the handlers they had before (Lightning's teardown re-installs ours)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._saved_handlers.items():
            if signal.getsignal(signum) is self._handle:
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            self.training = False
            raise RunInterrupted(signum, None, "(a second Ctrl-C: stopped at once)")
        if not self.training:
            self._forward_or_raise(signum, None, "before training started or after it ended")
        if self.received is None:
            log.warning("received %s: saving %s at the end of this step", signal.Signals(signum).name, self.path)
        self.received = signum

    def _forward_or_raise(self, signum: int, checkpoint: Path | None, where: str) -> None:
        """submitit's requeue signal goes on to submitit's handler (it requeues and exits); others stop the run."""
        previous = self._saved_handlers.get(signum)
        if signum == requeue_signal() and callable(previous):
            previous(signum, None)
        raise RunInterrupted(signum, checkpoint, where)

    # --- hooks -----------------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.received = None
        self.training = False
        self._install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registered its own SIGTERM handler after `setup` (it raises mid-validation and exits 0): ours only
        self.training = True
        self._install()

    def _stop_if_signalled(self, trainer: pl.Trainer) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        signum = self.received if self.received is not None else int(signal.SIGTERM)  # a rank told by another
        trainer.save_checkpoint(self.path)
        self.training = False
        self._forward_or_raise(signum, self.path, f"at step {trainer.global_step}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._stop_if_signalled(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.training and not trainer.sanity_checking:
            self._stop_if_signalled(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.training = False

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.training = False

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.training = False
        self.release()

    def state_dict(self) -> dict[str, Any]:
        return {}


__all__ = ["Preemption", "RunInterrupted", "PREEMPT_NAME", "requeue_signal"]
