"""Global workspace: phase 4's limited-capacity workspace (`nets.workspace.GlobalWorkspace`: modules compete to
write into a few slots, the slots are broadcast back) at model width, followed by broadcast blocks in which
every token attends to the other tokens and to the workspace slots.

Each stream (vision, text, audio) enters through an adapter to the model width plus a learned stream
embedding; `embed` builds the residual stream, `forward` runs the workspace on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.brain_ai.blocks import CrossBlock, check_heads
from brainlab.nets.workspace import GlobalWorkspace, masked_mean


class CompetingWorkspace(GlobalWorkspace):
    """Phase 4's workspace, with `reset_parameters` for its slot initialisation (meta-device builds)."""

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.init_slots.normal_(0.0, 0.02)


class Workspace(nn.Module):
    """`embed(streams) -> (x (B, N, dim), mask, spans)`; `forward(x, mask, spans) -> (x, slots, write)`."""

    def __init__(self, dim: int, stream_dims: Mapping[str, int], slots: int = 16, rounds: int = 2,
                 capacity: int = 0, depth: int = 5, heads: int = 32, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        positive_int("model.net.workspace.dim", dim)
        check_heads("model.net.workspace", dim, heads)
        self.dim, self.streams = dim, tuple(stream_dims)
        self.adapters = nn.ModuleDict({s: nn.Linear(int(d), dim) for s, d in stream_dims.items()})
        self.stream_embed = nn.Parameter(torch.empty(len(self.streams), dim))
        self.compete = CompetingWorkspace(dim, dim, slots, rounds, capacity)
        self.blocks = nn.ModuleList(CrossBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.stream_embed, std=0.02)

    def embed(self, streams: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        parts, mask_parts, spans, start = [], [], [], 0
        for i, name in enumerate(self.streams):
            x = self.adapters[name](streams[name]) + self.stream_embed[i]
            m = masks.get(name)
            mask_parts.append(torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if m is None else m)
            parts.append(x)
            spans.append((start, start + x.shape[1]))
            start += x.shape[1]
        return torch.cat(parts, 1), torch.cat(mask_parts, 1), spans

    def forward(self, x: torch.Tensor, mask: torch.Tensor, spans: Sequence[tuple[int, int]]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = [x[:, a:b] for a, b in spans]
        masks = [mask[:, a:b] for a, b in spans]
        states = torch.stack([masked_mean(t, m) for t, m in zip(tokens, masks, strict=True)], 1)
        slots, write = self.compete(states, tokens, masks)  # (B, K, dim), (B, rounds, K, streams)
        for block in self.blocks:
            x = block(x, slots, key_mask=mask)
        return self.norm(x), slots, write
