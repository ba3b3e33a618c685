"""Old `_target_` strings in saved run dirs and checkpoints load through the alias table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.config import compose_cfg

from brainlab.core import aliases
from brainlab.core.aliases import current_target, rewrite_targets
from brainlab.eval import evaluate
from brainlab.nets.readout_snn import ReadoutSNN
from brainlab.phases.event_snn import EventSNN

#: written by `train.py` before ReadoutSNN moved out of brainlab.snn.fastsnn (its configs name the old path)
LEGACY_RUN = Path(__file__).resolve().parents[1] / "helpers" / "legacy_run"


def test_moved_names_map_to_their_new_home(monkeypatch) -> None:
    assert current_target("brainlab.snn.fastsnn.ReadoutSNN") == "brainlab.nets.readout_snn.ReadoutSNN"
    assert current_target("torch.optim.Adam") == "torch.optim.Adam"
    monkeypatch.setitem(aliases.MOVED_MODULES, "brainlab.old.place", "brainlab.new.place")
    assert current_target("brainlab.old.place.Thing") == "brainlab.new.place.Thing"
    assert current_target("brainlab.old.placement.Thing") == "brainlab.old.placement.Thing"
    cfg = {"net": {"_target_": "brainlab.snn.fastsnn.ReadoutSNN", "layers": [{"_target_": "brainlab.old.place.X"}]}}
    assert rewrite_targets(cfg) == {
        "net": {"_target_": "brainlab.nets.readout_snn.ReadoutSNN", "layers": [{"_target_": "brainlab.new.place.X"}]}
    }


def test_an_old_checkpoint_loads_into_the_moved_class() -> None:
    phase = EventSNN.load_from_checkpoint(LEGACY_RUN / "checkpoints" / "last.ckpt", map_location="cpu")
    assert isinstance(phase.net, ReadoutSNN)
    assert phase.hparams.net["_target_"] == "brainlab.nets.readout_snn.ReadoutSNN"


def test_eval_of_an_old_run_dir_gives_its_saved_test_metrics(tmp_path) -> None:
    run_dir = tmp_path / "legacy"
    shutil.copytree(LEGACY_RUN, run_dir)
    assert "brainlab.snn.fastsnn.ReadoutSNN" in (run_dir / ".hydra" / "config.yaml").read_text()
    current = compose_cfg(tmp_path / "eval", ["callbacks.progress_bar=null", "logger=csv"])
    metrics = evaluate(run_dir / "checkpoints" / "last.ckpt", current)
    saved = json.loads((LEGACY_RUN / "metrics.json").read_text())
    # the neuromorphic figures changed meaning since (NeuroBench's definitions, CHANGELOG): model figures only
    for key in ("test/acc", "test/loss", "test/rate/mean"):
        assert metrics[key] == pytest.approx(saved[key], rel=1e-5), key
