"""Benchmark figures reach W&B (offline) and the benchmark JSON carries the neuromorphic costs."""

from __future__ import annotations

import json
from pathlib import Path

from brainlab.bench.__main__ import main


def test_backends_bench_logs_figures_and_costs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["steps=[8]", "sizes=[16]", "batch=4", "repeats=1", "blog=false", "backends=[floor,sinabs,fused]",
            f"out={tmp_path}"]
    assert main(["backends", "--wandb", *args]) == 0
    (record_file,) = tmp_path.glob("backends-*/backends.json")
    rows = {r["backend"]: r for r in json.loads(record_file.read_text())["rows"]}
    # the bench's input events have amplitude 2: NeuroBench counts such layer calls as MACs, not SynOps
    assert rows["sinabs"]["synops"] + rows["sinabs"]["macs"] > 0 and 0 < rows["sinabs"]["activation_sparsity"] < 1
    assert rows["floor"]["activation_sparsity"] is None, "the ReLU floor has no spiking layer"
    (run,) = tmp_path.rglob("wandb/offline-run-*")
    images = sorted(p.name.split("_")[0] for p in (run / "files" / "media" / "images").rglob("*.png"))
    assert images == ["backends"] * 3, "the bench's three figures are logged as W&B images"


def test_unknown_bench_is_refused(capsys) -> None:
    assert main(["nope"]) == 2
    assert "usage: python -m brainlab.bench" in capsys.readouterr().err
