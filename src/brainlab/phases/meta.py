"""Phase 7: meta-learning with MAML (Finn et al. 2017), written with `torch.func`.

Each task of a batch is adapted on its support set by `model.inner_steps` gradient steps of size
`model.inner_lr` on a functional copy of the net's parameters (`functional_call` + `grad`), all tasks at once
(`vmap`); the query loss of the adapted parameters, averaged over tasks, is the meta-loss that Lightning's
normal (automatic) optimisation back-propagates into the initial parameters with the outer optimizer
(`model.optimizer.lr` = `model.outer_lr`). `model.first_order=true` drops the second-order terms (FOMAML).
Validation and test adapt too (`model.inner_steps_eval`, default = `inner_steps`), with gradients enabled even
under Lightning's inference mode.

Neuromodulated MAML (`model.neuromodulation=true`, the guide's "neuromodulation + MAML"): every layer (module
owning parameters) gets a meta-learned gate `g` on its inner learning rate, `lr = inner_lr * gate_range *
sigmoid(g)`, initialised to `inner_lr` (like Meta-SGD, one rate per layer, bounded in `(0, gate_range *
inner_lr)`). The gates are parameters of the phase, trained by the outer optimizer with the net; they get
meta-gradients in second- and first-order mode and are logged as `inner_lr/<layer>`.

Logged: `<stage>/loss`, `<stage>/acc` (query accuracy after adaptation, torchmetrics), `val/acc_best`,
`test/acc_unadapted` (query accuracy of the initial parameters: the no-adaptation baseline, chance for
shuffled labels), `test/acc_ci95` (half-width of the 95% confidence interval of the per-episode accuracy,
the field's convention) and `test/episodes`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torchmetrics import CatMetric, MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from brainlab.core.errors import ConfigError
from brainlab.phases.base import Phase, per_stage

STAGES = ("train", "val", "test")
Params = dict[str, torch.Tensor]


class MAML(Phase):
    """Model-agnostic meta-learning over batches of episodes (see the module docstring)."""

    logged_metrics = (*per_stage("loss", "acc"), "train/loss_step", "val/acc_best", "test/acc_unadapted",
                      "test/acc_ci95", "test/episodes", "inner_lr/*")

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        ways: int = 5,
        inner_steps: int = 10,
        inner_steps_eval: int | None = None,
        inner_lr: float = 0.4,
        outer_lr: float | None = None,
        first_order: bool = False,
        neuromodulation: bool = False,
        gate_range: float = 2.0,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        for key, value in (("inner_steps", inner_steps), ("inner_steps_eval", inner_steps_eval)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"model.{key} must be an integer >= 0, got {value!r}")
        if not inner_lr > 0:
            raise ConfigError(f"model.inner_lr must be > 0, got {inner_lr!r}")
        self.ways, self.inner_lr, self.first_order = ways, float(inner_lr), bool(first_order)
        if not gate_range > 1.0:
            raise ConfigError(f"model.gate_range must be > 1 (the gated lr spans (0, gate_range * inner_lr)), "
                              f"got {gate_range!r}")
        self.inner_steps = inner_steps
        self.neuromodulation, self.gate_range = bool(neuromodulation), float(gate_range)
        self.lr_gates = nn.ParameterDict()
        if self.neuromodulation:
            init = -math.log(self.gate_range - 1.0)  # sigmoid(init) * gate_range = 1: start at inner_lr
            for layer in dict.fromkeys(layer_of(name) for name, _ in self.net.named_parameters()):
                self.lr_gates[gate_key(layer)] = nn.Parameter(torch.tensor(init))
        self.inner_steps_eval = inner_steps if inner_steps_eval is None else inner_steps_eval
        self.acc = nn.ModuleDict({f"{s}_acc": MulticlassAccuracy(num_classes=ways, average="micro") for s in STAGES})
        self.loss_mean = nn.ModuleDict({f"{s}_loss": MeanMetric() for s in STAGES})
        self.val_acc_best = MaxMetric()
        self.episode_acc = CatMetric()
        self.unadapted_acc = MeanMetric()

    # --- the functional learner ---------------------------------------------------------------------
    def _loss(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(self.net, params, (x,)), y)

    def layer_lrs(self) -> dict[str, torch.Tensor | float]:
        """Inner learning rate of every layer: gated when neuromodulated, else `inner_lr`."""
        layers = dict.fromkeys(layer_of(name) for name, _ in self.net.named_parameters())
        if not self.neuromodulation:
            return {layer: self.inner_lr for layer in layers}
        return {layer: self.inner_lr * self.gate_range * torch.sigmoid(self.lr_gates[gate_key(layer)])
                for layer in layers}

    def adapt(self, params: Params, x: torch.Tensor, y: torch.Tensor, steps: int,
              lrs: Mapping[str, torch.Tensor | float] | None = None) -> Params:
        """`steps` SGD steps on one task's support set; differentiable unless first-order.

        `lrs` maps layers to their inner learning rates (`layer_lrs()` when None); first-order mode drops the
        second-order terms but keeps the gradient into gated rates (as Meta-SGD's first-order variant).
        """
        lrs = self.layer_lrs() if lrs is None else lrs
        for _ in range(steps):
            grads = grad(self._loss)(params, x, y)
            if self.first_order:
                grads = {k: g.detach() for k, g in grads.items()}
            params = {k: p - lrs[layer_of(k)] * grads[k] for k, p in params.items()}
        return params

    def query_logits(self, batch: Mapping[str, torch.Tensor], steps: int) -> torch.Tensor:
        """Query logits `(tasks, N*Q, ways)` after adapting each task's parameters on its support set."""
        params = dict(self.net.named_parameters())
        lrs = self.layer_lrs()

        def one_task(sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
            return functional_call(self.net, self.adapt(params, sx, sy, steps, lrs), (qx,))

        return vmap(one_task)(batch["support_x"], batch["support_y"], batch["query_x"])

    def query_accuracy(self, batch: Mapping[str, torch.Tensor], steps: int | None = None) -> torch.Tensor:
        """Per-task query accuracy after `steps` inner steps (0 = the initial parameters, no adaptation)."""
        steps = self.inner_steps_eval if steps is None else steps
        with torch.inference_mode(False), torch.enable_grad():
            logits = self.query_logits(_plain(batch), steps)
        return (logits.argmax(-1) == batch["query_y"]).float().mean(-1).detach()

    # --- Lightning ----------------------------------------------------------------------------------
    def step(self, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        if stage == "train":
            logits = self.query_logits(batch, self.inner_steps)
        else:
            with torch.inference_mode(False), torch.enable_grad():
                logits = self.query_logits(_plain(batch), self.inner_steps_eval).detach()
        target = batch["query_y"]
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        tasks = target.shape[0]
        self.acc[f"{stage}_acc"](logits.flatten(0, 1).detach(), target.flatten())
        self.loss_mean[f"{stage}_loss"].update(loss.detach(), weight=tasks)
        if stage == "test":
            self.episode_acc.update((logits.argmax(-1) == target).float().mean(-1))
            self.unadapted_acc.update(self.query_accuracy(batch, steps=0).mean(), weight=tasks)
            self.log("test/acc_unadapted", self.unadapted_acc, on_step=False, on_epoch=True, batch_size=tasks)
        kw = {"on_step": False, "on_epoch": True, "batch_size": tasks}
        self.log(f"{stage}/loss", self.loss_mean[f"{stage}_loss"], **kw)
        self.log(f"{stage}/acc", self.acc[f"{stage}_acc"], prog_bar=True, **kw)
        if stage == "train":
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, batch_size=tasks)
        return loss

    def on_train_epoch_end(self) -> None:
        for layer, lr in self.layer_lrs().items() if self.neuromodulation else ():
            self.log(f"inner_lr/{layer}", lr.detach())

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.acc["val_acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def on_test_epoch_start(self) -> None:
        self.episode_acc.reset()

    def on_test_epoch_end(self) -> None:
        accs = self.episode_acc.compute().flatten()
        n = accs.numel()
        half = 1.96 * accs.std(unbiased=True) / math.sqrt(n) if n > 1 else torch.tensor(float("nan"))
        self.log("test/acc_ci95", half)
        self.log("test/episodes", float(n))


def layer_of(param_name: str) -> str:
    """The layer (module path) owning a parameter: `features.0.0.weight` -> `features.0.0`."""
    return param_name.rpartition(".")[0] or param_name


def gate_key(layer: str) -> str:
    """A ParameterDict key for a layer path (keys cannot hold dots)."""
    return layer.replace(".", "-")


def _plain(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies of inference-mode tensors that autograd may use (Lightning evaluates in inference mode)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
