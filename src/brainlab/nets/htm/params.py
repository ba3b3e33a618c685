"""The temporal memories' settings: `model.net.tm.*` with `model.net.columns` and `model.net.cells_per_column`.

One frozen dataclass both algorithms read, and the one place their values are checked: every bad value is
refused as a one-line `ConfigError` naming its key and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError

#: model.net.tm.algorithm: bami = Numenta's TemporalMemory (NAB's numentaTM detector); backtracking = NuPIC's
#: older BacktrackingTM (NAB's numenta detector)
ALGORITHMS = ("bami", "backtracking")
#: settings only the backtracking TM reads (pay-attention mode and its two replay buffers)
BACKTRACKING_ONLY = ("pam_length", "max_inf_backtrack", "max_lrn_backtrack", "max_seq_length")
_SIZES = ("activation_threshold", "min_threshold", "new_synapse_count", "max_synapses_per_segment",
          "max_segments_per_cell")
_PERMANENCES = ("initial_permanence", "connected_permanence", "permanence_increment", "permanence_decrement",
                "predicted_segment_decrement")


@dataclass(frozen=True)
class TMParams:
    """A temporal memory's layer size, thresholds, permanences and seed (NuPIC's NAB values by default)."""

    columns: int = 2048
    """`model.net.columns`: columns per stream (the spatial pooler's output)"""
    cells_per_column: int = 32
    """`model.net.cells_per_column`"""
    algorithm: str = "bami"
    """one of `ALGORITHMS`"""
    activation_threshold: int = 13
    """active connected synapses that make a segment active (its cell predictive)"""
    min_threshold: int = 10
    """active potential synapses that make a segment matching (a candidate to learn)"""
    new_synapse_count: int = 20
    """synapses a learning segment grows to previous winner (learning) cells"""
    max_synapses_per_segment: int = 32
    """a segment's width: a full segment gives up its weakest synapses to grow new ones"""
    max_segments_per_cell: int = 128
    """a full cell gives up its least used segment to grow a new one"""
    initial_permanence: float = 0.21
    """a new synapse's permanence"""
    connected_permanence: float = 0.5
    """the permanence from which a synapse is connected"""
    permanence_increment: float = 0.1
    """reinforcement of a learning segment's active synapses"""
    permanence_decrement: float = 0.1
    """weakening of a learning segment's inactive synapses"""
    predicted_segment_decrement: float = 0.0
    """bami only: punishment of segments that predicted a column that stayed inactive"""
    seed: int = 1960
    """every random draw of the temporal memory"""
    pam_length: int = 3
    """backtracking only: steps out of sequence before learning starts over (pay-attention mode)"""
    max_inf_backtrack: int = 10
    """backtracking only: inputs kept for inference backtracking"""
    max_lrn_backtrack: int = 5
    """backtracking only: inputs kept for learning backtracking"""
    max_seq_length: int = 32
    """backtracking only: learning starts over after this many steps in one sequence (0: never)"""

    @classmethod
    def from_config(cls, columns: int, cells_per_column: int, tm: Mapping[str, Any] | None) -> TMParams:
        """The params of `model.net.{columns,cells_per_column}` and the `model.net.tm` mapping, checked."""
        tm = dict(tm or {})
        known = {f.name for f in fields(cls)} - {"columns", "cells_per_column"}
        for key in tm:
            if key not in known:
                raise ConfigError(f"model.net.tm.{key} is not a temporal-memory setting: remove it "
                                  f"(settings: {', '.join(sorted(known))})")
            if key in BACKTRACKING_ONLY and tm.get("algorithm", "bami") != "backtracking":
                raise ConfigError(f"model.net.tm.{key} is read by algorithm=backtracking only: remove it or set "
                                  "model.net.tm.algorithm=backtracking (model=htm_backtracking)")
        return cls(columns=columns, cells_per_column=cells_per_column, **tm)

    def __post_init__(self) -> None:
        check_choice("model.net.tm.algorithm", self.algorithm, ALGORITHMS)
        positive_int("model.net.columns", self.columns)
        positive_int("model.net.cells_per_column", self.cells_per_column)
        for key in _SIZES:
            positive_int(f"model.net.tm.{key}", getattr(self, key))
        for key in _PERMANENCES:
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"model.net.tm.{key} must be in [0, 1], got {getattr(self, key)!r}")
        if self.min_threshold > self.activation_threshold:
            raise ConfigError(f"model.net.tm.min_threshold ({self.min_threshold}) must be <= activation_threshold "
                              f"({self.activation_threshold}): lower it")
        if self.new_synapse_count > self.max_synapses_per_segment:
            raise ConfigError(f"model.net.tm.new_synapse_count ({self.new_synapse_count}) must be <= "
                              f"max_synapses_per_segment ({self.max_synapses_per_segment}): lower it")
        if self.algorithm == "bami":
            self._check_bami()
        else:
            self._check_backtracking()

    def _check_bami(self) -> None:
        if self.max_synapses_per_segment > 255 or self.cells_per_column > 255:
            raise ConfigError("model.net.tm.max_synapses_per_segment and model.net.cells_per_column must be <= 255 "
                              "for algorithm=bami (its segment sort keys hold them in 8 bits): lower them")

    def _check_backtracking(self) -> None:
        if self.predicted_segment_decrement:
            raise ConfigError("model.net.tm.predicted_segment_decrement has no meaning for algorithm=backtracking: "
                              "set it to 0")
        if self.pam_length < 1:
            raise ConfigError("model.net.tm.pam_length must be >= 1 (NuPIC's backtracking TM needs pay-attention "
                              f"mode), got {self.pam_length}")
        for key in ("max_inf_backtrack", "max_lrn_backtrack", "max_seq_length"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.net.tm.{key} must be >= 0, got {getattr(self, key)}")
