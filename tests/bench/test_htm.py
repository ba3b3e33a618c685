"""The HTM speed benchmark writes its table, JSON and figure."""

from __future__ import annotations

import json
from pathlib import Path

from brainlab.bench import htm as bench


def test_htm_bench_writes_json_and_png(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "bench"
    result = bench.main(["sizes=[128x4]", "streams=[1,3]", "rows=30", "rounds=2", f"out={out}"])
    data = json.loads((out / "htm.json").read_text())
    assert [(r["streams"], r["rows"]) for r in data["results"]] == [(1, 30), (3, 30)]
    assert all(r["rows_per_s"] > 0 and r["segments"] > 0 for r in result["results"])
    # bench hygiene: the load, the rounds, median and min per point, noisy on 2 rounds
    assert data["rounds"] == 2 and len(data["load_before"]) == 3 and len(data["load_after"]) == 3 and data["noisy"]
    assert all(r["min_s"] <= r["seconds"] and len(r["seconds_all"]) == 2 and r["noisy"] for r in data["results"])
    assert (out / "htm.png").stat().st_size > 0
    assert "| 128x4 | 3 | 30 |" in capsys.readouterr().out


def test_htm_bench_times_the_backtracking_tm_and_still_takes_old_flags(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "bench_bt"
    args = ["--tm", "backtracking", "--sizes", "128x4", "--streams", "2", "--rows", "30", "--rounds", "1",
            "--out", str(out)]
    result = bench.main(args)
    assert "--flags are deprecated" in capsys.readouterr().err
    data = json.loads((out / "htm.json").read_text())
    assert data["meta"]["tm"] == "backtracking" and result["results"][0]["tm"] == "backtracking"
    assert result["results"][0]["segments"] > 0
