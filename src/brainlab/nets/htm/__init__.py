"""Hierarchical Temporal Memory in PyTorch, written from Numenta's published descriptions (BAMI; Hawkins &
Ahmad 2016; Cui, Ahmad & Hawkins 2017; Ahmad et al. 2017 for the anomaly likelihood).

Encoders (random distributed scalar encoder + periodic time-of-day + optional weekend bits) -> spatial pooler
(global k-winners, boosting, Hebbian permanence learning) -> temporal memory (columns x cells, distal
segments, predictive cells, bursting, reinforcement, growth, punishment) -> raw anomaly score (fraction of
active columns that were not predicted) -> anomaly likelihood (Gaussian tail probability of the rolling mean
raw score, re-estimated on a rolling window), as in Numenta's NAB detector.

Modules: `encoder` (RDSE + time of day), `spatial_pooler`, `params` (the temporal memories' settings and their
checks), `temporal_memory` (BAMI, `model.net.tm.algorithm=bami`), `backtracking` (NuPIC's BacktrackingTM,
`algorithm=backtracking`), `likelihood` (NAB's scoring of raw scores), `net` (the `HTM` module that joins them).
"""

from brainlab.nets.htm.backtracking import BacktrackingTemporalMemory
from brainlab.nets.htm.encoder import Encoder, rdse_table
from brainlab.nets.htm.likelihood import AnomalyLikelihood, spatial_anomaly
from brainlab.nets.htm.net import HTM, TM_ALGORITHMS
from brainlab.nets.htm.params import ALGORITHMS, TMParams
from brainlab.nets.htm.spatial_pooler import SpatialPooler
from brainlab.nets.htm.temporal_memory import TemporalMemory, counter_uniform

__all__ = [
    "ALGORITHMS",
    "HTM",
    "TM_ALGORITHMS",
    "AnomalyLikelihood",
    "BacktrackingTemporalMemory",
    "Encoder",
    "SpatialPooler",
    "TMParams",
    "TemporalMemory",
    "counter_uniform",
    "rdse_table",
    "spatial_anomaly",
]
