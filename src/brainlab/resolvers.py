"""OmegaConf resolvers the configs use (registered on `import brainlab`)."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf


def ddp_strategy(accelerator: str = "auto") -> str:
    """`ddp` where it re-launches safely (CUDA), `ddp_spawn` on CPU.

    Plain `ddp` re-executes the command line, which breaks under pytest and multiruns without GPUs.
    """
    on_gpu = accelerator in {"gpu", "cuda", "auto"} and torch.cuda.is_available()
    return "ddp" if on_gpu else "ddp_spawn"


def register() -> None:
    OmegaConf.register_new_resolver("ddp_strategy", ddp_strategy, replace=True)
