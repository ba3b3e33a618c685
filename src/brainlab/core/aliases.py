"""Old `_target_` strings, as saved in run configs and checkpoints before a class moved, mapped to where it lives now.

Applied once where a saved config is read (`eval.py`'s run config) and where a checkpoint's hyperparameters build a
net (`Phase.__init__`), so an old run dir or checkpoint keeps loading without re-exports that would break the layers.
Add a row whenever a configurable class or module moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

#: a moved class: old dotted path -> new dotted path
MOVED_TARGETS: dict[str, str] = {
    "brainlab.snn.fastsnn.ReadoutSNN": "brainlab.nets.readout_snn.ReadoutSNN",
    "brainlab.snn.fastsnn.LeakyReadout": "brainlab.nets.readout_snn.LeakyReadout",
    "brainlab.nets.brain_ai.blocks.block_classes": "brainlab.nets.brain_ai.model.block_classes",
    "brainlab.nets.brain_ai.blocks.checkpoint_classes": "brainlab.nets.brain_ai.model.checkpoint_classes",
    "brainlab.snn.fused_cpu.rows_in_parallel": "brainlab.snn.parallel.rows_in_parallel",
}

#: a moved module (every name in it moved along): old module -> new module
MOVED_MODULES: dict[str, str] = {
    "brainlab.nets.backtracking_tm": "brainlab.nets.htm.backtracking",
    "brainlab.snn.fused_cpu": "brainlab.snn.fused.cpu",
    "brainlab.snn.fused_ext": "brainlab.snn.fused.ext",
    "brainlab.snn.fused_ext_cpu": "brainlab.snn.fused.ext_cpu",
    "brainlab.snn.fused_triton": "brainlab.snn.fused.triton",
}

T = TypeVar("T")


def current_target(target: str) -> str:
    """Where `target` lives now (itself when it never moved)."""
    if target in MOVED_TARGETS:
        return MOVED_TARGETS[target]
    module, _, name = target.rpartition(".")
    while module:
        if module in MOVED_MODULES:
            return f"{MOVED_MODULES[module]}{target[len(module):]}"
        module, _, _ = module.rpartition(".")
    return target


def rewrite_targets(node: T) -> T:
    """A copy of `node` (nested dicts and lists, e.g. a config as a container) with every `_target_` current."""
    if isinstance(node, Mapping):
        return {  # type: ignore[return-value]
            key: current_target(value) if key == "_target_" and isinstance(value, str) else rewrite_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return type(node)(rewrite_targets(item) for item in node)  # type: ignore[return-value]
    return node


def rewrite_config(cfg: Any) -> Any:
    """`rewrite_targets` for an OmegaConf config: interpolations are kept unresolved."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        return rewrite_targets(cfg)
    return OmegaConf.create(rewrite_targets(OmegaConf.to_container(cfg, resolve=False)))
