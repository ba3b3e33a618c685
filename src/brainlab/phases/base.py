"""What every phase shares: net from config, optimizer + schedule, state resets, metric plumbing.

A phase's config (`conf/model/<phase>.yaml`) is instantiated with `_recursive_: false`: the phase builds its
`net`, `optimizer` and `scheduler` from their configs, and keeps those configs in its hyperparameters, so a
checkpoint alone rebuilds the model (`Phase.load_from_checkpoint(path)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel
from torchmetrics import MaxMetric

from brainlab.core.aliases import rewrite_targets
from brainlab.core.errors import TrainingError
from brainlab.core.wrappers import unwrapped_name
from brainlab.snn.factory import reset_states


def as_container(cfg: Any) -> Any:
    """Plain, resolved python containers for configs (what hyperparameters store)."""
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def per_stage(*names: str, stages: tuple[str, ...] = ("train", "val", "test")) -> tuple[str, ...]:
    """`<stage>/<name>` for every stage and name: the usual part of a phase's `logged_metrics`."""
    return tuple(f"{stage}/{name}" for stage in stages for name in names)


def keep_neuron_states(phase: Phase, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Load-state-dict pre-hook: neuron states keep their current (reset) values, also from older checkpoints
    that stored them. A hook, not an override, so it also runs when FSDP loads the phase as a submodule."""
    for key, buffer in phase.neuron_state_buffers().items():
        state_dict[prefix + key] = buffer.detach().clone()


class Phase(pl.LightningModule):
    """Base LightningModule: subclasses implement `step(batch, stage) -> loss` and their metrics."""

    #: every name the phase logs with `self.log` (`*` stands for a part named by the data, e.g. a bAbI task);
    #: brainlab.validate checks `monitor`, `optimized_metric` and the callbacks' `monitor` against it at setup
    #: (empty: not declared, not checked). tests/phases/test_logged_metrics.py holds it to what a fit logs.
    logged_metrics: tuple[str, ...] = ()

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        is_module = isinstance(net, nn.Module)
        self.save_hyperparameters(ignore=["net"] if is_module else None, logger=False)
        for key in ("net", "optimizer", "scheduler"):
            if key in self.hparams:  # old `_target_` strings of a checkpoint made current
                self.hparams[key] = rewrite_targets(as_container(self.hparams[key]))
        self.net = net if is_module else self.build_net(self.hparams.net)
        self.register_load_state_dict_pre_hook(keep_neuron_states)

    def build_net(self, cfg: Mapping[str, Any]) -> nn.Module:
        """The net from `model.net` (a subclass may build it elsewhere, e.g. on the meta device)."""
        return instantiate(cfg, _convert_="all")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # --- torch threads: step-heavy small models (HTM streams, rollouts) run faster on fewer threads --------
    #: intra-op threads while fitting/testing (None: leave torch's setting); a phase sets it from its config
    num_threads: int | None = None
    _saved_threads: int | None = None

    def limit_threads(self) -> None:
        if self.num_threads and self._saved_threads is None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(int(self.num_threads))

    def restore_threads(self) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def on_fit_start(self) -> None:
        self.limit_threads()

    def on_fit_end(self) -> None:
        self.restore_threads()

    def on_test_start(self) -> None:
        self.limit_threads()

    def on_test_end(self) -> None:
        self.restore_threads()

    # --- the one place state is reset --------------------------------------------------------------
    def reset_states(self) -> None:
        """Reset every stateful (spiking) layer; called before each batch of every stage."""
        reset_states(m for m in self.modules() if m is not self)

    def step(self, batch: Any, stage: str) -> torch.Tensor:
        """Compute and log the loss and metrics of one batch."""
        raise NotImplementedError

    def _run_step(self, batch: Any, stage: str) -> torch.Tensor:
        self.reset_states()
        loss = self.step(batch, stage)
        if stage == "train" and not torch.isfinite(loss):
            for logger in self.loggers:  # keep the loss history up to the bad step (csv writes in batches)
                logger.save()
            raise TrainingError(
                f"train/loss became {loss.item()} at step {self.global_step}: lower model.optimizer.lr "
                "(or set trainer.gradient_clip_val) and check the input data for NaN/inf"
            )
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._run_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._run_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._run_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.reset_states()
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x)

    # --- checkpoints hold weights only (RNG states and the loader position: callbacks.resume_state) ---
    def neuron_state_buffers(self) -> dict[str, torch.Tensor]:
        """Buffers of stateful layers (membrane potentials...): transient, shaped by the last batch."""
        found = {}
        for name, module in self.named_modules():
            if module is not self and callable(getattr(module, "reset_states", None)):
                for buffer_name, buffer in module.named_buffers(recurse=False):
                    found[unwrapped_name(f"{name}.{buffer_name}")] = buffer
        return found

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Weights without neuron states: checkpoints never depend on the last batch's size."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        for key in self.neuron_state_buffers():
            state.pop(prefix + key, None)
        return state

    # --- optimisation ----------------------------------------------------------------------------
    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """`trainer.gradient_clip_val` under FSDP too: the norm over all shards from FSDP's own `clip_grad_norm_`
        (Lightning refuses norm clipping for FSDP, having no handle on the root module); otherwise Lightning's."""
        root = self._trainer.strategy.model if self._trainer is not None else None
        if isinstance(root, FullyShardedDataParallel) and gradient_clip_val and gradient_clip_algorithm != "value":
            root.clip_grad_norm_(gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        opt_cfg = self.hparams.get("optimizer") or {
            "_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3
        }
        optimizer = instantiate(opt_cfg, _convert_="all")(params=self.parameters())
        sched_cfg = self.hparams.get("scheduler")
        if not sched_cfg:
            return optimizer
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 1
        scheduler = instantiate(sched_cfg, _convert_="all")(optimizer=optimizer, total_steps=int(total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class BestValAccuracyPhase(Phase):
    """A Phase that logs `val/acc_best`, the best `val/acc` so far (what checkpoints and sweeps optimise).

    Subclasses return the epoch's validation accuracy from `val_accuracy()`.
    """

    logged_metrics: tuple[str, ...] = ("val/acc_best",)

    def __init__(self, **base: Any) -> None:
        super().__init__(**base)
        self.val_acc_best = MaxMetric()

    def val_accuracy(self) -> torch.Tensor:
        raise NotImplementedError

    def on_train_start(self) -> None:
        self.val_acc_best.reset()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_accuracy())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
