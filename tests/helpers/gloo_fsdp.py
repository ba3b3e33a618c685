"""Lightning's FSDPStrategy on CPU processes (gloo), for tests only: the GPU recipe's machinery (per-block
wrap policy, activation checkpointing, sharded checkpoints and resume, torchrun's environment) run on a CPU
machine; `StateProbe` records what the tests check. Lightning refuses FSDP on CPU and passes FSDP no device
when the root device is the CPU (torch then asks for an accelerator): `GlooFSDPStrategy` only wraps with
`device_id=cpu` and leaves the rest to Lightning."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper
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


def state_digest(pl_module: pl.LightningModule) -> dict[str, Any]:
    """What this rank holds: a checksum of its parameter shards and of the HTM permanences, the learning rate,
    and the optimizer's step counts."""
    params = b"".join(p.detach().float().numpy().tobytes() for p in pl_module.parameters())
    optimizer = pl_module.trainer.optimizers[0]
    steps = sorted({float(s["step"]) for s in optimizer.state.values() if "step" in s})
    return {"params": zlib.crc32(params), "htm": zlib.crc32(pl_module.net.htm.permanence.numpy().tobytes()),
            "lr": optimizer.param_groups[0]["lr"], "adam_steps": steps}


class StateProbe(pl.Callback):
    """Writes `<out_dir>/rank<R>.json`: nodes and devices and the HTM permanences' range when training starts,
    the state digest before every training step, the classes FSDP wrapped as units and those under activation
    checkpointing."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.record: dict[str, Any] = {"steps": {}}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.record["layout"] = {"num_nodes": trainer.num_nodes, "devices": trainer.num_devices,
                                 "world_size": trainer.world_size, "rank": trainer.global_rank}
        perm = pl_module.net.htm.permanence
        self.record["permanence"] = {"min": int(perm.min()), "max": int(perm.max()),
                                     "potential": float((perm >= 0).float().mean())}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        self.record["steps"][str(trainer.global_step)] = state_digest(pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        modules = list(trainer.strategy.model.modules())
        self.record["fsdp_units"] = sorted({type(m.module).__name__ for m in modules
                                            if isinstance(m, FullyShardedDataParallel)})
        self.record["checkpointed"] = sorted({type(m._checkpoint_wrapped_module).__name__ for m in modules
                                              if isinstance(m, CheckpointWrapper)})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))
