"""Module names as users and state dicts know them, whatever wrappers FSDP or activation checkpointing added."""

from __future__ import annotations

WRAPPER_MODULES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def unwrapped_name(name: str) -> str:
    """`net.layers.0._fsdp_wrapped_module.neuron` -> `net.layers.0.neuron`."""
    for wrapper in WRAPPER_MODULES:
        name = name.replace(wrapper, "")
    return name
