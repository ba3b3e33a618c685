"""`python -m brainlab.bench loading [key=value ...]` at a tiny size: config from conf/bench/loading.yaml,
an SSC-format set read by tonic's SSC class, a row per cache with e2e/floor, JSON + PNG written."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from brainlab.bench.__main__ import main
from brainlab.bench.caching import load_config, write_ssc_like
from brainlab.data.ssc import SSC


def test_tiny_loading_bench_writes_the_table_with_e2e_over_floor(tmp_path: Path, capsys) -> None:
    args = ["loading", "samples=24", "events=300", "batch_size=8", "backends=[fused]", "floor_batches=2",
            "caches=[none,disk,memory,gpu]", "gpu_cpu_path=true", "device=cpu", "epochs=2", f"out={tmp_path}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| cache | loader epoch s | x vs none | build s | backend | e2e epoch s | floor s | e2e/floor |" in printed
    result = json.loads((tmp_path / "caching.json").read_text())
    assert set(result["loader"]) == {"none", "disk", "memory", "gpu"}
    assert result["loader"]["none"]["x_none"] == pytest.approx(1.0)
    for cache in ("none", "disk", "memory", "gpu"):
        row = result["epoch"][cache]["fused"]
        assert row["x_floor"] == pytest.approx(row["epoch_s"] / row["floor_s"])
        assert result["loader"][cache]["iterations"] == 3  # 24 samples / batch 8, drop_last
    assert result["pairing"] == "step"
    assert any(k.startswith("e2e memory/fused") for k in result["targets"])
    assert 0 < result["disk_bytes"] < result["raw_bytes"]
    # bench hygiene: the load, interleaved rounds, median and min, and no verdict on 2 epochs
    assert result["rounds"] == 2 and len(result["load_before"]) == len(result["load_after"]) == 3
    assert result["noisy"] and "fewer than 5 repeats" in result["noisy_why"][0]
    for cache in ("none", "disk", "memory", "gpu"):
        row, e2e = result["loader"][cache], result["epoch"][cache]["fused"]
        assert row["noisy"] and row["min_epoch_s"] <= row["epoch_s"] and len(row["epochs_s"]) == 2
        assert e2e["noisy"] and e2e["min_epoch_s"] <= e2e["epoch_s"] and len(e2e["floor_epochs_s"]) == 2
    timed = [t for goal, t in result["targets"].items() if not goal.startswith("disk cache")]
    assert all(t["noisy"] and t["met"] is None for t in timed) and result["targets"]["disk cache <= raw size"]["met"]
    assert "-> noisy" in printed and "-> met" in printed
    assert (tmp_path / "caching.png").stat().st_size > 0
    assert len(SSC(save_to=str(tmp_path / "data"), split="train")) == 24, "tonic's SSC class reads the set"


def test_generated_set_is_ssc_format_chunked_and_reused(tmp_path: Path) -> None:
    path = write_ssc_like(tmp_path / "SSC" / "ssc_train.h5", 10, 50, seed=1, chunk=3)
    with h5py.File(path, "r") as f:
        assert f["spikes/times"].dtype == h5py.vlen_dtype(np.float32)
        assert f["spikes/units"].dtype == h5py.vlen_dtype(np.uint16)
        assert len(f["labels"]) == 10 and f["labels"][:].max() < 35
        times = [f["spikes/times"][i] for i in range(10)]
    assert all(np.all(np.diff(t) >= 0) and t.size > 0 for t in times), "every chunk's samples written, sorted"
    mtime = path.stat().st_mtime_ns
    assert write_ssc_like(path, 10, 50, seed=1) == path and path.stat().st_mtime_ns == mtime, "reused"
    write_ssc_like(path, 12, 50, seed=1)
    with h5py.File(path, "r") as f:
        assert len(f["labels"]) == 12, "other parameters: written again"


def test_config_composes_with_overrides_and_refuses_bad_values() -> None:
    assert load_config([]).samples == 512
    assert load_config(["scale=full"]).samples == 75466
    assert load_config(["samples=77", "epochs=2"]).epochs == 2
    for bad in (["samples=0"], ["nope=1"], ["caches=[ram]"], ["pairing=never"]):
        with pytest.raises(SystemExit, match=r"^error: "):
            main(["loading", *bad, "out=/nonexistent/never-written"])
