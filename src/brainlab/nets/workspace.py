"""A global workspace over modality processors (Baars; Goyal et al. 2022, "shared global workspace").

Each modality has an encoder (a small transformer or a temporal convolution) that turns its sequence into
tokens and a summary state. A workspace of `slots` vectors (`workspace_dim` each) has limited capacity: for
every slot the modality processors *compete* to write (softmax over modalities, optionally only the top
`capacity` of them may write), the slots take in the winning content (a GRU update), and the workspace is
then *broadcast* to every processor, which re-reads its own tokens with the broadcast as the query. After
`rounds` such cycles the regression head reads the workspace. `fusion=late` is the late-fusion baseline
(concatenated summaries -> MLP) on the same encoders.

`forward(batch)` takes the datamodule's dict (`<modality> (B, L, D)`, `<modality>_mask (B, L)`) and returns
`(score (B,), info)`; `info["write"]` is `(B, rounds, slots, M)`: each slot's write attention over modalities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError

MODALITIES = ("text", "audio", "vision")
ENCODERS = ("transformer", "conv")
FUSIONS = ("workspace", "late")


def check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    """A non-empty subset of text/audio/vision, each named once (model.net.modalities)."""
    mods = tuple(modalities) if not isinstance(modalities, str) else (modalities,)
    bad = [m for m in mods if m not in MODALITIES]
    if not mods or bad or len(set(mods)) != len(mods):
        raise ConfigError(f"model.net.modalities must list some of {list(MODALITIES)} once each, got {list(mods)}")
    return mods


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real steps: `(B, L, H), (B, L) -> (B, H)`."""
    w = mask.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def sinusoid(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed sinusoidal positions `(length, dim)`."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class ModalityEncoder(nn.Module):
    """`(B, L, D), (B, L) -> tokens (B, L, H), summary (B, H)`."""

    def __init__(self, input_dim: int, hidden_dim: int, kind: str = "transformer", layers: int = 1,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.kind = kind
        self.proj = nn.Sequential(nn.LayerNorm(input_dim), nn.Linear(input_dim, hidden_dim))
        if kind == "transformer":
            layer = nn.TransformerEncoderLayer(hidden_dim, heads, 2 * hidden_dim, dropout, batch_first=True,
                                               norm_first=True)
            self.body: nn.Module = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        else:
            self.body = nn.ModuleList(
                nn.Conv1d(hidden_dim, hidden_dim, kernel_size=3, padding=1) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.proj(x)
        mask = mask | ~mask.any(1, keepdim=True)  # an empty sequence is read as its (zero) padding, not NaN
        if self.kind == "transformer":
            h = h + sinusoid(h.shape[1], h.shape[2], h.device)
            h = self.body(h, src_key_padding_mask=~mask)
        else:
            h = h * mask.unsqueeze(-1)  # padding stays zero: the convolution sees the sequence's own ends
            for conv in self.body:
                h = h + self.dropout(torch.nn.functional.gelu(conv(h.transpose(1, 2)).transpose(1, 2)))
                h = h * mask.unsqueeze(-1)
        h = self.norm(h)
        return h, masked_mean(h, mask)


class GlobalWorkspace(nn.Module):
    """Limited-capacity slots written by competing modules, broadcast back to them, for a few rounds."""

    def __init__(self, hidden_dim: int, workspace_dim: int, slots: int = 4, rounds: int = 2,
                 capacity: int = 0, temperature: float = 1.0) -> None:
        super().__init__()
        self.rounds, self.capacity, self.temperature = rounds, capacity, temperature
        self.init_slots = nn.Parameter(torch.randn(slots, workspace_dim) * 0.02)
        self.slot_norm = nn.LayerNorm(workspace_dim)
        self.query = nn.Linear(workspace_dim, workspace_dim)
        self.key = nn.Linear(hidden_dim, workspace_dim)
        self.value = nn.Linear(hidden_dim, workspace_dim)
        self.update = nn.GRUCell(workspace_dim, workspace_dim)
        self.read_query = nn.Linear(hidden_dim, workspace_dim)
        self.read_out = nn.Linear(workspace_dim, hidden_dim)
        self.token_query = nn.Linear(hidden_dim, hidden_dim)
        self.state_norm = nn.LayerNorm(hidden_dim)

    def compete(self, slots: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Write attention `(B, K, M)`: each slot's softmax over modules, top-`capacity` modules only."""
        scores = self.query(self.slot_norm(slots)) @ self.key(states).transpose(1, 2)
        scores = scores / (math.sqrt(slots.shape[-1]) * self.temperature)
        if 0 < self.capacity < states.shape[1]:
            kth = scores.topk(self.capacity, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        return scores.softmax(-1)

    def broadcast(self, slots: torch.Tensor, states: torch.Tensor, tokens: Sequence[torch.Tensor],
                  masks: Sequence[torch.Tensor]) -> torch.Tensor:
        """Every module reads the workspace, then re-reads its own tokens with what it read as the query."""
        read = (self.read_query(states) @ self.slot_norm(slots).transpose(1, 2)) / math.sqrt(slots.shape[-1])
        context = self.read_out(read.softmax(-1) @ slots)  # (B, M, H)
        pooled = []
        for m, (tok, mask) in enumerate(zip(tokens, masks, strict=True)):
            q = self.token_query(context[:, m]).unsqueeze(1)  # (B, 1, H)
            att = (q @ tok.transpose(1, 2)).squeeze(1) / math.sqrt(tok.shape[-1])
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            pooled.append((att.unsqueeze(1) @ tok).squeeze(1))
        return self.state_norm(states + context + torch.stack(pooled, 1))

    def forward(self, states: torch.Tensor, tokens: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`states (B, M, H)` -> `slots (B, K, Dw)`, write attention `(B, rounds, K, M)`."""
        b, k = states.shape[0], self.init_slots.shape[0]
        slots = self.init_slots.unsqueeze(0).expand(b, -1, -1)
        writes = []
        for r in range(self.rounds):
            write = self.compete(slots, states)
            incoming = write @ self.value(states)  # (B, K, Dw)
            slots = self.update(incoming.reshape(b * k, -1), slots.reshape(b * k, -1)).reshape(b, k, -1)
            writes.append(write)
            if r + 1 < self.rounds:
                states = self.broadcast(slots, states, tokens, masks)
        return slots, torch.stack(writes, 1)


class WorkspaceNet(nn.Module):
    """Modality encoders -> global workspace (or late fusion) -> a sentiment score per sample."""

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        input_dims: Mapping[str, int] | None = None,
        fusion: str = "workspace",
        hidden_dim: int = 64,
        workspace_dim: int = 128,
        slots: int = 4,
        rounds: int = 2,
        capacity: int = 0,
        temperature: float = 1.0,
        encoder: str = "transformer",
        encoder_layers: int = 1,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.modalities = check_modalities(modalities)
        self.fusion = check_choice("model.net.fusion", fusion, FUSIONS)
        self.encoder_kind = check_choice("model.net.encoder", encoder, ENCODERS)
        self.hidden_dim = positive_int("model.net.hidden_dim", hidden_dim)
        self.workspace_dim = positive_int("model.net.workspace_dim", workspace_dim)
        positive_int("model.net.slots", slots)
        positive_int("model.net.rounds", rounds)
        positive_int("model.net.encoder_layers", encoder_layers)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ConfigError(f"model.net.capacity must be an integer >= 0 (0 = no limit), got {capacity!r}")
        if encoder == "transformer" and hidden_dim % positive_int("model.net.heads", heads):
            raise ConfigError(f"model.net.hidden_dim={hidden_dim} must be divisible by model.net.heads={heads}")
        if not temperature > 0:
            raise ConfigError(f"model.net.temperature must be > 0, got {temperature!r}")
        self.encoder_args = {"kind": encoder, "layers": encoder_layers, "heads": heads, "dropout": dropout}
        self.encoders = nn.ModuleDict()
        self.input_dims: dict[str, int] = {}
        m = len(self.modalities)
        if self.fusion == "workspace":
            self.workspace: GlobalWorkspace | None = GlobalWorkspace(
                hidden_dim, workspace_dim, slots, rounds, capacity, temperature)
            head_in = workspace_dim
        else:
            self.workspace = None
            head_in = m * hidden_dim
        self.head = nn.Sequential(nn.LayerNorm(head_in), nn.Linear(head_in, hidden_dim), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(hidden_dim, 1))
        if input_dims:
            self.build(input_dims)

    def build(self, input_dims: Mapping[str, int]) -> None:
        """Create the encoders for the data's feature sizes (idempotent for the same sizes)."""
        missing = [m for m in self.modalities if m not in input_dims]
        if missing:
            raise ConfigError(f"the data has no {missing} features; model.net.modalities={list(self.modalities)}")
        dims = {m: int(input_dims[m]) for m in self.modalities}
        if dims == self.input_dims:
            return
        if self.input_dims:
            raise ConfigError(f"the model was built for feature sizes {self.input_dims}, the data has {dims}")
        self.input_dims = dims
        for mod, dim in dims.items():
            self.encoders[mod] = ModalityEncoder(dim, self.hidden_dim, **self.encoder_args)

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
        if not self.input_dims:
            raise RuntimeError("WorkspaceNet.build(input_dims) must run before forward (the phase does it)")
        tokens, masks, states = [], [], []
        for mod in self.modalities:
            x = batch[mod]
            mask = batch.get(f"{mod}_mask")
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
            mask = mask | ~mask.any(1, keepdim=True)
            tok, summary = self.encoders[mod](x, mask)
            tokens.append(tok)
            masks.append(mask)
            states.append(summary)
        stacked = torch.stack(states, 1)  # (B, M, H)
        if self.workspace is None:
            return self.head(stacked.flatten(1)).squeeze(-1), {"write": None}
        slots, write = self.workspace(stacked, tokens, masks)
        return self.head(slots.mean(1)).squeeze(-1), {"write": write}


def winners(write: torch.Tensor) -> torch.Tensor:
    """The modality with the most write attention over all rounds and slots: `(B, R, K, M) -> (B,)`."""
    return write.sum((1, 2)).argmax(-1)
