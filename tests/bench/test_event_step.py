"""`brainlab bench event_step` at a tiny size: the floor and fused with each synapse, in interleaved rounds through the
timing helper, JSON with the load, median and min, `noisy` printed in place of x floor on one round."""

from __future__ import annotations

import json
from pathlib import Path

from brainlab.bench.__main__ import BENCHES
from brainlab.bench.__main__ import main as bench_main


def test_tiny_event_step_writes_the_hygiene_fields(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert BENCHES["event_step"] == "event_step"
    assert bench_main(["event_step", "steps=4", "batch=2", "rounds=1", "threads=1", f"out={tmp_path}"]) == 0
    record = json.loads((tmp_path / "event_step.json").read_text())
    assert list(record["variants"]) == ["floor", "fused-dense", "fused-event", "fused-auto"]
    assert record["rounds"] == 1 and len(record["load_before"]) == len(record["load_after"]) == 3 and record["noisy"]
    for v in record["variants"].values():
        assert v["min_s"] <= v["median_s"] and len(v["steps_s"]) == 1 and v["noisy"] and v["ratios_noisy"]
    assert len(record["input_density"]) == 4 and record["input_density"][0] > 0
    out = capsys.readouterr().out
    assert "x floor noisy" in out and "load " in out
