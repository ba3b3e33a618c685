"""The integrated Brain-Inspired model as a Lightning phase (issue 12).

Loss = cross-entropy of the decision heads' logits + `free_energy_weight` x the variational free energy of their
generative model. `meta_init=true` builds the net on the meta device and gives it storage in `configure_model`
(FSDP: unit by unit on the GPUs, the large presets' setting). `meta_inner_steps > 0`: MAML on the meta-learner's
fast weights in every training batch (support = first half, query = second half). After every optimizer step the
HTM layer applies its own learning rule to its permanence buffers (outside the optimizer). Logs `<stage>/loss`,
`<stage>/ce`, `<stage>/free_energy`, `<stage>/acc`, `<stage>/spike_rate`, `val/acc_best`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.brain_ai.model import is_on_meta, materialize, named_rule_buffers
from brainlab.phases.base import BestValAccuracyPhase, per_stage

STAGES = ("train", "val", "test")


class BrainAIPhase(BestValAccuracyPhase):
    logged_metrics = (*per_stage("loss", "acc", "ce", "free_energy", "spike_rate"), "val/acc_best")

    def __init__(self, num_classes: int, free_energy_weight: float = 0.1, num_threads: int | None = None,
                 meta_init: bool = False, meta_inner_steps: int = 0, meta_inner_lr: float = 0.01,
                 meta_first_order: bool = True, **base: Any) -> None:
        positive_int("model.num_classes", num_classes)
        if free_energy_weight < 0:
            raise ConfigError(f"model.free_energy_weight must be >= 0, got {free_energy_weight!r}")
        if isinstance(meta_inner_steps, bool) or not isinstance(meta_inner_steps, int) or meta_inner_steps < 0:
            raise ConfigError(f"model.meta_inner_steps must be an integer >= 0, got {meta_inner_steps!r}")
        meta_cfg = (meta_inner_steps, float(meta_inner_lr), bool(meta_first_order))
        super().__init__(**base)
        self.free_energy_weight = free_energy_weight
        self.num_threads = num_threads
        self.meta_inner_steps, self.meta_inner_lr, self.meta_first_order = meta_cfg
        self.acc = torch.nn.ModuleDict(
            {f"{s}_": MulticlassAccuracy(num_classes=num_classes, average="micro") for s in STAGES})
        self.mean_loss = torch.nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        # DDP broadcasts buffers from rank 0 (at start and every step; gloo and NCCL have no int16): the HTM rule
        # keeps its permanences identical on every rank itself (all-reduced statistics), so DDP leaves them alone
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            self, [name for name, _ in named_rule_buffers(self)])

    def build_net(self, cfg: Mapping[str, Any]) -> nn.Module:
        """`meta_init=true`: the net has shapes only until `configure_model` (metrics stay real tensors)."""
        with torch.device("meta") if self.hparams.get("meta_init") else nullcontext():
            return super().build_net(cfg)

    def maml_forward(self, batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """MAML on the meta-learner's fast weights: adapt them on the first half of the batch (support), score
        the second half (query) with the adapted weights; the outer loss trains everything."""
        out = self.net.features(batch)
        context, target = out["context"], batch["label"]
        half = context.shape[0] // 2

        def support_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            return F.cross_entropy(self.net.decide(context[:half], params)["logits"].float(), target[:half])

        params = self.net.meta.inner_loop(support_loss, self.meta_inner_steps, self.meta_inner_lr,
                                          self.meta_first_order)
        return {**out, **self.net.decide(context[half:], params)}, target[half:]

    def step(self, batch: Any, stage: str) -> torch.Tensor:
        if stage == "train" and self.meta_inner_steps and batch["label"].shape[0] >= 2:
            out, target = self.maml_forward(batch)
        else:
            out, target = self(batch), batch["label"]
        logits = out["logits"]
        ce = F.cross_entropy(logits.float(), target)
        free_energy = out["free_energy"].mean()
        loss = ce + self.free_energy_weight * free_energy
        key, on_step = f"{stage}_", stage == "train"
        self.mean_loss[key](loss.detach())
        self.acc[key](logits.detach(), target)
        self.log(f"{stage}/loss", self.mean_loss[key], on_step=on_step, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", self.acc[key], on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/ce", ce.detach(), on_step=on_step, on_epoch=True)
        self.log(f"{stage}/free_energy", free_energy.detach(), on_step=on_step, on_epoch=True)
        self.log(f"{stage}/spike_rate", (out["spikes"] > 0).float().mean(), on_step=False, on_epoch=True)
        return loss

    def configure_model(self) -> None:
        """A meta-device net (`model.meta_init=true`) gets storage here: under FSDP each unit is materialised on
        its GPU and sharded one at a time (FSDP calls `reset_parameters`), so no rank ever holds the whole
        model; otherwise it is initialised on the CPU and Lightning moves it."""
        if not is_on_meta(self.net):
            return
        if self._trainer is not None and isinstance(self.trainer.strategy, FSDPStrategy):
            return
        materialize(self.net, "cpu")

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer step, then the HTM layer's own rule (never part of backward): both before any callback
        sees the batch's end, so a checkpoint saved there holds the permanences of the same step as the weights."""
        super().optimizer_step(*args, **kwargs)
        for module in self.net.modules():
            learn = getattr(module, "apply_learning", None)
            if callable(learn):
                learn()

    def val_accuracy(self) -> torch.Tensor:
        return self.acc["val_"].compute()
