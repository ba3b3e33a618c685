"""Under DDP (2 CPU processes) the neuromorphic figures are summed over ranks: equal to a single-process run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.config import TINY, compose_cfg

from brainlab.measure import main
from brainlab.train import run


@pytest.mark.slow
def test_ddp_figures_equal_the_single_process_figures(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path / "run", [*TINY, "trainer.limit_train_batches=3", "logger=csv", "test=false"])
    run(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    reports = {}
    for trainer in ("cpu", "ddp"):  # 16 test samples: 8 per rank under ddp
        out = tmp_path / trainer
        assert main([f"ckpt_path={ckpt}", f"paths.output_dir={out}", f"trainer={trainer}"]) == 0
        reports[trainer] = json.loads((out / "neuromorphic.json").read_text())
    single, ddp = reports["cpu"], reports["ddp"]
    print({k: (single[k], ddp[k]) for k in ("samples", "synops", "macs", "dense_ops", "activation_sparsity")})
    assert single["samples"] == ddp["samples"] == 16 and ddp["padded_samples"] == 0
    for key in ("synops", "macs", "dense_ops", "synops_spike_count", "energy_uj", "membrane_updates",
                "activation_sparsity", "connection_sparsity", "footprint_bytes"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-9), key
    assert ddp["activation_sparsity_per_layer"] == pytest.approx(single["activation_sparsity_per_layer"])
    assert ddp["firing_rate_per_layer"] == pytest.approx(single["firing_rate_per_layer"])
    assert ddp["test_metrics"]["test/acc"] == pytest.approx(single["test_metrics"]["test/acc"])
