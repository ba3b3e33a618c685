"""bench spike_counts: counts from firing rates by hand; a tiny smoke run writes JSON + PNG for both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from brainlab.bench import spike_counts
from brainlab.core.errors import ConfigError


def test_spikes_per_sample_from_rates() -> None:
    cfg = OmegaConf.create({"data": {"n_time_bins": 50}, "model": {"net": {"hidden_dim": 200}}})
    metrics = {"test/rate/net.layers.1": 0.01, "test/rate/net.layers.3": 0.002, "test/rate/mean": 0.006,
               "test/acc": 0.5}
    assert spike_counts.spikes_per_sample(metrics, cfg) == pytest.approx({"net.layers.1": 100.0,
                                                                          "net.layers.3": 20.0})


def test_refuses_flags_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="key=value overrides"):
        spike_counts.main(["--epochs", "3"])
    with pytest.raises(ConfigError, match="bench spike_counts:"):
        spike_counts.main(["nonsense_key=1"])


def test_smoke_run_writes_counts_for_both_backends(tmp_path: Path) -> None:
    tiny = ["trainer.max_epochs=1", "data.num_classes=4", "data.n_channels=16", "data.samples_per_class=6",
            "data.test_samples_per_class=3", "data.n_time_bins=20", "data.duration_us=200000",
            "data.transform.transforms.0.time_window=10000", "data.batch_size=12", "model.net.hidden_dim=12",
            "model.net.neuron.spike_threshold=0.2"]
    extra = "extra=[" + ",".join(f'"{o}"' for o in tiny) + "]"
    record = spike_counts.main([f"out={tmp_path}", extra])
    saved = json.loads(Path(record["out"], "spike_counts.json").read_text())
    assert Path(saved["png"]).stat().st_size > 0
    rows = {r["backend"]: r for r in saved["rows"]}
    assert set(rows) == {"fastsnn", "sinabs"}
    for row in rows.values():
        assert set(row["spikes_per_sample"]) == {"net.layers.1", "net.layers.3"}
        assert 0.0 <= row["test_acc"] <= 1.0
    # bench hygiene: the training runs' seconds with the load, one run each (noisy)
    assert saved["rounds"] == 1 and len(saved["load_before"]) == len(saved["load_after"]) == 3 and saved["noisy"]
    assert all(r["run_s"] == r["min_run_s"] > 0 and r["noisy"] for r in rows.values())
    fast = rows["fastsnn"]["spikes_per_sample"]
    assert all(0 < v <= 12 + 1e-6 for v in fast.values()), "single spike: at most one per neuron per sample"
    assert sum(fast.values()) == pytest.approx(rows["fastsnn"]["total_spikes_per_sample"])
