"""Lightning's FSDPStrategy on CPU processes (gloo), for tests only: the GPU recipe's machinery (per-block
wrap policy, activation checkpointing, sharded checkpoints and resume, torchrun's environment) run on a CPU
machine. Lightning refuses FSDP on CPU and passes FSDP no device when the root device is the CPU (torch then
asks for an accelerator); this subclass only wraps with `device_id=cpu` and leaves the rest to Lightning."""

from __future__ import annotations

import torch
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel


class GlooFSDPStrategy(FSDPStrategy):
    def _setup_model(self, model: nn.Module) -> nn.Module:
        if not any(isinstance(m, FullyShardedDataParallel) for m in model.modules()):
            model = FullyShardedDataParallel(module=model, cpu_offload=self.cpu_offload,
                                             mixed_precision=self.mixed_precision_config,
                                             sharding_strategy=self.sharding_strategy,
                                             device_id=torch.device("cpu"), **self.kwargs)
        policy = self.kwargs.pop("auto_wrap_policy", None)  # applied above: Lightning would drop it with a warning
        try:
            return super()._setup_model(model)  # activation checkpointing, metrics placement
        finally:
            if policy is not None:
                self.kwargs["auto_wrap_policy"] = policy
