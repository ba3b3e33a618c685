"""`brainlab measure ckpt_path=...` writes the NeuroBench-style report, equal to `measure(model, batches)`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.utils import instantiate

from brainlab.export import load_phase
from brainlab.measure import main
from brainlab.metrics.neuromorphic import measure


def test_measure_cli_report_equals_measure_on_the_test_loader(trained_run, tmp_path: Path, capsys) -> None:
    run_dir, cfg = trained_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "measured"
    assert main([f"ckpt_path={ckpt}", f"paths.output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "Effective_ACs" in printed and "wrote" in printed
    report = json.loads((out / "neuromorphic.json").read_text())
    assert report["checkpoint"] == str(ckpt.resolve()) and "test/acc" in report["test_metrics"]
    md = (out / "neuromorphic.md").read_text()
    assert "SynOps (effective ACs)" in md and "footprint" in md and "test/acc" in md

    phase, _, _ = load_phase(ckpt)
    data = instantiate(cfg.data, _convert_="all")
    data.prepare_data()
    data.setup("test")
    expected = measure(phase, data.test_dataloader(), warn=False)
    assert report["samples"] == expected["samples"] == len(data.test_dataloader().dataset)
    for key in ("synops", "macs", "dense_ops", "synops_spike_count", "energy_uj", "membrane_updates",
                "activation_sparsity", "connection_sparsity", "footprint_bytes"):
        assert report[key] == pytest.approx(expected[key], rel=1e-9), key
    assert report["activation_sparsity_per_layer"] == pytest.approx(expected["activation_sparsity_per_layer"])
    assert report["silent_layers"] == expected["silent_layers"]
