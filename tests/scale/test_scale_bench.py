"""`python -m brainlab.bench scale`: one train.py run per (preset, batch size), timed, with its peak memory."""

from __future__ import annotations

import json
from pathlib import Path

from brainlab.bench.scale import main, training_state


def test_scale_bench_times_the_recipe_and_reports_failures(tmp_path: Path) -> None:
    result = main(["--batch-sizes", "2", "--steps", "2", "--warmup", "1", "--out", str(tmp_path)])
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["batch"] == 2 and row["world_size"] == 1
    assert row["samples_per_s"] > 0 and row["step_s"] > 0 and row["peak_gib"] > 0.05  # a Python process's RSS
    params, state = training_state("tiny")
    assert row["params"] == params and row["state_gib"] == state / 2**30
    assert 14 * params < state < 16 * params  # 16 B a trained parameter, 2 B an int16 HTM permanence
    assert json.loads((tmp_path / "scale.json").read_text())["rows"] == [row]
    assert (tmp_path / "scale.png").stat().st_size > 0

    failed = main(["--batch-sizes", "2", "--steps", "2", "--precision", "nonsense", "--out", str(tmp_path / "b")])
    assert failed["rows"][0]["status"] == "failed" and "nonsense" in failed["rows"][0]["error"]
