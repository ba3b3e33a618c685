"""A small HTM configuration and a timestamped stream, shared by the HTM net and phase tests."""

from __future__ import annotations

from typing import Any

import numpy as np

#: a small HTM that learns short sequences in a few hundred rows (the bami TM unless `tm.algorithm` says otherwise)
SMALL: dict[str, Any] = {
    "columns": 256,
    "cells_per_column": 8,
    "sp": {"active_columns": 10, "seed": 3},
    "tm": {
        "activation_threshold": 5,
        "min_threshold": 4,
        "new_synapse_count": 8,
        "max_synapses_per_segment": 16,
        "seed": 4,
    },
    "encoder": {"size": 200, "active_bits": 11, "time_of_day_bits": 0},
}


def with_tm(**tm: Any) -> dict[str, Any]:
    """SMALL with its `tm` settings updated (e.g. `algorithm="backtracking"`)."""
    return {**SMALL, "tm": {**SMALL["tm"], **tm}}


def stream(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`values` as float64 with 5-minute timestamps from 2015-01-01 (NAB's spacing)."""
    return np.asarray(values, dtype=np.float64), 1_420_070_400 + 300 * np.arange(len(values))


#: SMALL as `model.net.*` overrides of an experiment (`experiment=nab_htm`)
SMALL_OVERRIDES = [
    f"model.net.columns={SMALL['columns']}",
    f"model.net.cells_per_column={SMALL['cells_per_column']}",
    f"model.net.sp.active_columns={SMALL['sp']['active_columns']}",
    *(f"model.net.tm.{key}={SMALL['tm'][key]}"
      for key in ("activation_threshold", "min_threshold", "new_synapse_count")),
]
