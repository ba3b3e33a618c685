"""The integrated Brain-Inspired model: the phases' networks composed around one residual token stream.

    image ──ViT──┐                     text ids ──┐
    text ──transformer──┤ adapters ──> x (B, N, dim) + engram(text n-grams)
    audio ──wav2vec2────┘                 │
                         x += SNN core(x)   (tokens as time; 4 spiking layers from the backend factory)
                         x += HTM(spikes)   (spatial pooler over the SNN's spikes; rule-learned buffers)
                         x, slots = global workspace(x)   (compete -> write -> broadcast, broadcast blocks)
                         film = meta.modulation(slots)     (neuromodulation)
                         u, proof = reasoning(x, slots)    (multi-hop memory reading)
                         context = meta.adapter(film(slots + u))  (MAML fast weights)
                         logits, free energy = decision heads(context)

Sizes come from `conf/preset/*.yaml` (`model.net.*`); `python -m brainlab.params` prints the table per part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.brain_ai.audio_encoder import AudioEncoder
from brainlab.nets.brain_ai.blocks import Block, CrossBlock
from brainlab.nets.brain_ai.decision_heads import DecisionHeads
from brainlab.nets.brain_ai.engram import Engram
from brainlab.nets.brain_ai.htm_layer import HTMLayer
from brainlab.nets.brain_ai.meta import MetaLearner
from brainlab.nets.brain_ai.reasoning import Hop, Reasoner
from brainlab.nets.brain_ai.snn_core import SNNCore, SpikingLayer
from brainlab.nets.brain_ai.text_encoder import TextEncoder
from brainlab.nets.brain_ai.vision_encoder import VisionEncoder
from brainlab.nets.brain_ai.workspace import Workspace
from brainlab.snn.factory import NeuronFactory

MODALITIES = ("vision", "text", "audio")
#: the parts in the guide's order (attribute names of BrainAI)
PARTS = ("vision", "text", "audio", "snn_core", "htm", "workspace", "decision", "reasoning", "meta", "engram")


class BrainAI(nn.Module):
    """`batch {image, text, text_mask, audio} -> {logits, free_energy, policy, write, proof, spikes, columns}`."""

    def __init__(
        self,
        num_classes: int,
        backend: NeuronFactory,
        dim: int = 4096,
        modalities: Sequence[str] = MODALITIES,
        vision: Mapping[str, Any] | None = None,
        text: Mapping[str, Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        snn: Mapping[str, Any] | None = None,
        neuron: Mapping[str, Any] | None = None,
        htm: Mapping[str, Any] | None = None,
        workspace: Mapping[str, Any] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
        engram: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.dim = positive_int("model.net.dim", dim)
        mods = (modalities,) if isinstance(modalities, str) else tuple(modalities)
        if not mods or any(m not in MODALITIES for m in mods) or len(set(mods)) != len(mods):
            raise ConfigError(f"model.net.modalities must list some of {list(MODALITIES)} once each, got {list(mods)}")
        self.modalities = mods
        streams: dict[str, int] = {}
        self.vision = VisionEncoder(**dict(vision or {})) if "vision" in mods else None
        self.text = TextEncoder(**dict(text or {})) if "text" in mods else None
        self.audio = AudioEncoder(**dict(audio or {})) if "audio" in mods else None
        for name in mods:
            streams[name] = getattr(self, name).dim
        self.engram = Engram(dim, **dict(engram or {})) if self.text is not None else None
        self.snn_core = SNNCore(dim, backend, neuron=neuron, **dict(snn or {}))
        self.htm = HTMLayer(self.snn_core.hidden_dim, dim, **dict(htm or {}))
        self.workspace = Workspace(dim, streams, **dict(workspace or {}))
        self.reasoning = Reasoner(dim, **dict(reasoning or {}))
        self.meta = MetaLearner(dim, **{"sites": 2, **dict(meta or {})})
        self.decision = DecisionHeads(dim, num_classes, **dict(decision or {}))
        self.context_norm = nn.LayerNorm(dim)

    def encode(self, batch: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        streams, masks = {}, {}
        for name in self.modalities:
            if name == "vision":
                streams[name] = self.vision(batch["image"])
            elif name == "text":
                mask = batch.get("text_mask")
                streams[name] = self.text(batch["text"], mask)
                if mask is not None:
                    masks[name] = mask
            else:
                streams[name] = self.audio(batch["audio"])
        return streams, masks

    def features(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Everything up to the decision context (before the meta-learner's fast-weight adapter)."""
        missing = [k for k, m in (("image", "vision"), ("text", "text"), ("audio", "audio"))
                   if m in self.modalities and k not in batch]
        if missing:
            raise ValueError(f"BrainAI needs batch keys {missing} for model.net.modalities={list(self.modalities)}")
        streams, masks = self.encode(batch)
        x, mask, spans = self.workspace.embed(streams, masks)
        if self.engram is not None:
            a, b = spans[self.modalities.index("text")]
            memory = self.engram(x[:, a:b], batch["text"], masks.get("text"))
            x = torch.cat([x[:, :a], x[:, a:b] + memory, x[:, b:]], 1)
        snn_out, spikes = self.snn_core(x)
        x = x + snn_out
        htm_out, columns = self.htm(spikes)
        x = x + htm_out
        x, slots, write = self.workspace(x, mask, spans)
        film = self.meta.modulation(slots.mean(1))
        u, proof = self.reasoning(x, mask, slots)
        u = self.meta.modulate(u, film, 0)
        context = self.meta.modulate(self.context_norm(slots.mean(1) + u.mean(1)), film, 1)
        return {"context": context, "write": write, "proof": proof, "spikes": spikes, "columns": columns}

    def decide(self, context: torch.Tensor, params: dict[str, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """Fast-weight adapter (its own or MAML-adapted weights) -> decision heads."""
        logits, free_energy, policy = self.decision(self.meta(context, params))
        return {"logits": logits, "free_energy": free_energy, "policy": policy}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.features(batch)
        return {**out, **self.decide(out["context"])}

    def parts(self) -> dict[str, nn.Module | None]:
        return {name: getattr(self, name) for name in PARTS}


def named_rule_buffers(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The buffers modules learn by their own rule (each lists them in `rule_buffers`), by full name."""
    return [(f"{prefix}.{name}" if prefix else name, buffer) for prefix, m in module.named_modules()
            for name, buffer in m.named_buffers(recurse=False) if name in getattr(m, "rule_buffers", ())]


def is_on_meta(module: nn.Module) -> bool:
    return any(t.is_meta for t in [*module.parameters(), *module.buffers()])


@torch.no_grad()
def materialize(module: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Give a meta-device module real storage and initialise it as FSDP does: `reset_parameters()` of every
    submodule that owns tensors (each initialises only its own)."""
    module.to_empty(device=device)
    for sub in module.modules():
        owns = any(True for _ in sub.parameters(recurse=False)) or any(True for _ in sub.buffers(recurse=False))
        if owns:
            sub.reset_parameters()
    return module


def block_classes() -> set[type[nn.Module]]:
    """FSDP auto-wrap and activation-checkpointing units (`trainer=fsdp`): one per block.

    The large layers outside transformer blocks (each spiking layer, the engram table, the decision heads) are
    units too. Only modules entered through `forward` may be units (FSDP gathers a unit's shards in its
    forward): the meta-learner (its `modulation` is a second entry) stays in the root unit (~100M at 7B).
    """
    return {Block, CrossBlock, Hop, SpikingLayer, Engram, DecisionHeads}


def checkpoint_classes() -> set[type[nn.Module]]:
    """Blocks whose activations are recomputed in backward (the guide's gradient checkpointing)."""
    return {Block, CrossBlock, Hop}
