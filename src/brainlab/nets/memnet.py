"""End-to-end memory network (Sukhbaatar et al. 2015, "MemN2N") with multiple hops.

Sentences are bags of word embeddings weighted by position encoding, plus a learned temporal encoding
(most recent statement = slot 0 of the time table). Each hop attends over the memory with the controller
state `u`, reads `o = sum_i p_i c_i` and updates `u <- u + o` (adjacent tying: hop k's output embedding is
hop k+1's input embedding) or `u <- H u + o` (layer-wise tying: one A, one C for all hops). The attention of
every hop is returned, so a phase can supervise it with the supporting facts and read the model's proof.

The vocabulary is known only once the data is read: `MemN2N(vocab_size=None, ...)` is built later with
`build(vocab_size, num_answers)` (the reasoning phase does so in `setup`).
"""

from __future__ import annotations

import torch
from torch import nn

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError

TYING = ("adjacent", "layerwise")


def position_encoding(words: torch.Tensor, dim: int) -> torch.Tensor:
    """The paper's weights l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j of J in each sentence, 0 on padding.

    `words (..., L)` token ids (0 = padding) -> `(..., L, dim)`.
    """
    mask = (words != 0).to(torch.float32)
    n_words = mask.sum(-1, keepdim=True).clamp_min(1.0)  # J per sentence
    j = torch.arange(1, words.shape[-1] + 1, device=words.device, dtype=torch.float32)
    k = torch.arange(1, dim + 1, device=words.device, dtype=torch.float32) / dim
    frac = (j / n_words).unsqueeze(-1)  # (..., L, 1)
    weights = (1.0 - frac) - k * (1.0 - 2.0 * frac)
    return weights * mask.unsqueeze(-1)


class MemN2N(nn.Module):
    """`(story (B, M, L), query (B, Lq))` -> `(logits (B, num_answers), attention (B, hops, M))`."""

    def __init__(
        self,
        vocab_size: int | None = None,
        num_answers: int | None = None,
        embed_dim: int = 50,
        hops: int = 3,
        max_memory: int | None = 50,
        position_encoding: bool = True,
        temporal_encoding: bool = True,
        tying: str = "adjacent",
        readout_hidden: int = 0,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed_dim = positive_int("model.net.embed_dim", embed_dim)
        self.hops = positive_int("model.net.hops", hops)
        self.max_memory = None if max_memory is None else positive_int("model.net.max_memory", max_memory)
        if temporal_encoding and self.max_memory is None:
            raise ConfigError("model.net.temporal_encoding needs a memory size: set data.max_memory "
                              "(model.net.max_memory) or model.net.temporal_encoding=false")
        self.use_position = bool(position_encoding)
        self.use_time = bool(temporal_encoding)
        self.tying = check_choice("model.net.tying", tying, TYING)
        if isinstance(readout_hidden, bool) or not isinstance(readout_hidden, int) or readout_hidden < 0:
            raise ConfigError(f"model.net.readout_hidden must be an integer >= 0, got {readout_hidden!r}")
        self.readout_hidden = readout_hidden
        if init_std <= 0:
            raise ConfigError(f"model.net.init_std must be > 0, got {init_std!r}")
        self.init_std = init_std
        self.vocab_size: int | None = None
        self.num_answers: int | None = None
        if vocab_size is not None or num_answers is not None:
            self.build(vocab_size, num_answers)  # type: ignore[arg-type]

    @property
    def built(self) -> bool:
        return self.vocab_size is not None

    def build(self, vocab_size: int, num_answers: int) -> None:
        """Create the embeddings once the vocabulary is known (idempotent for the same sizes)."""
        vocab_size = positive_int("model.net.vocab_size", vocab_size)
        num_answers = positive_int("model.net.num_answers", num_answers)
        if self.built:
            if (vocab_size, num_answers) != (self.vocab_size, self.num_answers):
                raise ConfigError(f"MemN2N was built for {self.vocab_size} words / {self.num_answers} "
                                  f"answers, not {vocab_size} / {num_answers}")
            return
        self.vocab_size, self.num_answers = vocab_size, num_answers
        n_tables = self.hops + 1 if self.tying == "adjacent" else 2
        self.embeddings = nn.ModuleList(
            nn.Embedding(vocab_size, self.embed_dim, padding_idx=0) for _ in range(n_tables)
        )
        self.time = nn.ParameterList(
            nn.Parameter(torch.zeros(self.max_memory, self.embed_dim)) for _ in range(n_tables)
        ) if self.use_time else None
        layerwise = self.tying == "layerwise"
        self.query_embedding = nn.Embedding(vocab_size, self.embed_dim, padding_idx=0) if layerwise else None
        self.mix = nn.Linear(self.embed_dim, self.embed_dim, bias=False) if layerwise else None
        if self.readout_hidden:  # a non-linear answer module (e.g. yes/no needs a comparison)
            self.readout = nn.Sequential(nn.Linear(self.embed_dim, self.readout_hidden), nn.ReLU(),
                                         nn.Linear(self.readout_hidden, num_answers))
        else:  # the paper's W
            self.readout = nn.Linear(self.embed_dim, num_answers, bias=False)
            nn.init.normal_(self.readout.weight, std=self.init_std)
        for emb in [*self.embeddings, *([self.query_embedding] if layerwise else [])]:
            nn.init.normal_(emb.weight, std=self.init_std)
            with torch.no_grad():
                emb.weight[0].zero_()
        for table in self.time or []:
            nn.init.normal_(table, std=self.init_std)

    def _tables(self, hop: int) -> tuple[int, int]:
        """Indices of the (input, output) embedding tables of `hop`."""
        return (hop, hop + 1) if self.tying == "adjacent" else (0, 1)

    def _encode(self, words: torch.Tensor, table: int, embedding: nn.Embedding | None = None) -> torch.Tensor:
        """Bag of position-weighted word embeddings: `(..., L)` -> `(..., dim)`."""
        emb = (embedding or self.embeddings[table])(words)
        if self.use_position:
            emb = emb * position_encoding(words, self.embed_dim).to(emb.dtype)
        return emb.sum(-2)

    def _time(self, table: int, slots: int, lengths: torch.Tensor) -> torch.Tensor:
        """Temporal encoding `(B, M, dim)`: slot i of a story with n statements gets row n - 1 - i.

        Statements older than `max_memory` share the last row (the datamodule keeps only that many).
        """
        assert self.time is not None
        age = lengths.unsqueeze(1) - 1 - torch.arange(slots, device=lengths.device).unsqueeze(0)
        return self.time[table][age.clamp(0, self.max_memory - 1)]

    def forward(self, story: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.built:
            raise RuntimeError("MemN2N.build(vocab_size, num_answers) must run before forward")
        if story.dim() != 3 or query.dim() != 2 or story.shape[0] != query.shape[0]:
            raise ValueError(f"MemN2N expects story (B, M, L) and query (B, Lq), got {tuple(story.shape)} "
                             f"and {tuple(query.shape)}")
        memory_mask = (story != 0).any(-1)  # (B, M)
        lengths = memory_mask.sum(-1)
        u = self._encode(query, 0, self.query_embedding)
        attentions = []
        for hop in range(self.hops):
            a, c = self._tables(hop)
            keys = self._encode(story, a)
            values = self._encode(story, c)
            if self.time is not None:
                keys = keys + self._time(a, story.shape[1], lengths)
                values = values + self._time(c, story.shape[1], lengths)
            scores = torch.einsum("bmd,bd->bm", keys, u)
            scores = scores.masked_fill(~memory_mask, torch.finfo(scores.dtype).min)
            p = torch.softmax(scores, dim=-1) * memory_mask
            attentions.append(p)
            o = torch.einsum("bm,bmd->bd", p, values)
            u = (self.mix(u) if self.mix is not None else u) + o
        return self.readout(u), torch.stack(attentions, dim=1)
