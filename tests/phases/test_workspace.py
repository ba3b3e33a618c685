"""Phase 4: sentiment metric conventions, the global workspace net, and mosei_workspace end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.config import QUIET
from helpers.mosei import write_csd_release, write_mult_pickle

from brainlab.core.errors import ConfigError
from brainlab.metrics.sentiment import SentimentMetrics, WinCounts, seven_class
from brainlab.nets.workspace import WorkspaceNet, winners
from brainlab.phases.workspace import WorkspacePhase
from brainlab.train import run

FAST = [*QUIET, "model.net.hidden_dim=32",
        "model.net.workspace_dim=32", "data.batch_size=16"]
DIMS = {"text": 12, "audio": 6, "vision": 5}



@pytest.mark.filterwarnings("ignore:The variance of predictions or target")  # constant truth in the last case
def test_sentiment_metrics_follow_both_conventions_by_hand() -> None:
    preds = torch.tensor([-2.6, 0.4, 1.6, -0.6, 3.7, 0.0])
    target = torch.tensor([-3.0, 0.0, 2.0, 0.3, 2.6, -0.4])
    metrics = SentimentMetrics()
    metrics.update(preds[:4], target[:4])  # two batches accumulate
    metrics.update(preds[4:], target[4:])
    got = metrics.compute()
    assert got["acc7"] == pytest.approx(5 / 6)       # -0.6 -> -1 vs 0.3 -> 0 is the one miss
    assert got["acc2_has0"] == pytest.approx(4 / 6)  # >= 0 vs >= 0 on all six
    assert got["acc2_non0"] == pytest.approx(4 / 5)  # the truth-0 sample left out, > 0 vs > 0
    assert got["f1_has0"] == pytest.approx((4 * 0.75 + 2 * 0.5) / 6)  # weighted over the two classes
    assert got["f1_non0"] == pytest.approx(0.8)
    assert got["mae"] == pytest.approx(0.6)
    assert got["corr"] == pytest.approx(float(np.corrcoef(preds, target)[0, 1]), rel=1e-5)
    metrics.reset()
    metrics.update(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 0.0]))
    assert np.isnan(metrics.compute()["acc2_non0"])  # no non-zero truth: not a number, not 0 or 1


def test_seven_classes_clip_and_round_half_to_even() -> None:
    assert seven_class(torch.tensor([-9.0, -2.5, -0.5, 0.5, 1.5, 2.49, 7.0])).tolist() == [0, 1, 3, 3, 5, 5, 6]


def test_win_counts_per_class_by_hand() -> None:
    wins = WinCounts(num_modalities=3)
    wins.update(torch.tensor([0, 2, 2, 1]), torch.tensor([-3.0, 0.2, 0.4, 2.8]))
    wins.update(torch.tensor([2]), torch.tensor([-0.1]))
    counts = wins.compute()
    expected = torch.zeros(7, 3)
    expected[0, 0], expected[3, 2], expected[6, 1] = 1, 3, 1
    assert torch.equal(counts, expected)


def batch_of(b: int = 3, lengths: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
    lengths = lengths or {"text": 5, "audio": 7, "vision": 4}
    g = torch.Generator().manual_seed(0)
    out: dict[str, torch.Tensor] = {}
    for mod, dim in DIMS.items():
        out[mod] = torch.randn(b, lengths[mod], dim, generator=g)
        out[f"{mod}_mask"] = torch.ones(b, lengths[mod], dtype=torch.bool)
    return out


def test_workspace_shapes_capacity_and_modality_subsets() -> None:
    torch.manual_seed(0)
    net = WorkspaceNet(input_dims=DIMS, hidden_dim=16, workspace_dim=8, slots=3, rounds=2, capacity=1).eval()
    score, info = net(batch_of())
    assert score.shape == (3,) and info["write"].shape == (3, 2, 3, 3)
    assert torch.allclose(info["write"].sum(-1), torch.ones(3, 2, 3))
    assert ((info["write"] > 0).sum(-1) == 1).all(), "capacity 1: one module writes each slot"
    assert winners(info["write"]).shape == (3,)
    sub = WorkspaceNet(modalities=["audio"], input_dims=DIMS, hidden_dim=16, workspace_dim=8).eval()
    batch = batch_of()
    batch.pop("text")  # a subset needs only its own features
    assert sub(batch)[1]["write"].shape[-1] == 1
    late = WorkspaceNet(modalities=["vision", "text"], fusion="late", input_dims=DIMS, hidden_dim=16).eval()
    score, info = late(batch_of())
    assert score.shape == (3,) and info["write"] is None


def test_an_empty_modality_sequence_gives_a_finite_score() -> None:
    net = WorkspaceNet(input_dims=DIMS, hidden_dim=16, workspace_dim=8).eval()
    batch = batch_of(b=2)
    batch["vision_mask"][1] = False
    assert torch.isfinite(net(batch)[0]).all()


def test_padding_does_not_change_the_score() -> None:
    torch.manual_seed(0)
    for encoder in ("transformer", "conv"):
        net = WorkspaceNet(input_dims=DIMS, hidden_dim=16, workspace_dim=8, encoder=encoder).eval()
        batch = batch_of(b=2)
        padded = {k: v.clone() for k, v in batch.items()}
        padded["audio"] = torch.cat([batch["audio"], torch.randn(2, 3, DIMS["audio"])], 1)
        padded["audio_mask"] = torch.cat([batch["audio_mask"], torch.zeros(2, 3, dtype=torch.bool)], 1)
        with torch.no_grad():
            assert torch.allclose(net(batch)[0], net(padded)[0], atol=1e-5), encoder


def test_bad_net_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="model.net.modalities"):
        WorkspaceNet(modalities=["text", "smell"])
    with pytest.raises(ConfigError, match="model.net.modalities"):
        WorkspaceNet(modalities=[])
    with pytest.raises(ConfigError, match="model.net.fusion='early'"):
        WorkspaceNet(fusion="early")
    with pytest.raises(ConfigError, match="model.net.workspace_dim"):
        WorkspaceNet(workspace_dim=0)
    with pytest.raises(ConfigError, match="divisible"):
        WorkspaceNet(hidden_dim=30, heads=4)
    with pytest.raises(ConfigError, match="no \\['vision'\\] features"):
        WorkspaceNet(modalities=["vision"]).build({"text": 3})


@pytest.mark.heavy
def test_short_run_learns_the_informative_modality_and_routes_the_workspace_to_it(
    make_cfg, tmp_path: Path, one_thread
) -> None:
    write_mult_pickle(tmp_path / "mosei" / "mosei_senti_data.pkl", informative="vision", nonfinite=3)
    cfg = make_cfg("experiment=mosei_workspace", f"data.root={tmp_path / 'mosei'}", "trainer.max_epochs=8",
                   "model.optimizer.lr=3e-3", *FAST, tiny=False)
    metrics = run(cfg)
    # labels are 2 s, s ~ U(-1.5, 1.5): predicting 0 scores MAE 1.5 and Acc-7 about 1/6
    assert metrics["test/mae"] < 0.7 and metrics["test/corr"] > 0.85, metrics
    assert metrics["test/acc7"] > 0.35 and metrics["test/acc2_non0"] > 0.8, metrics
    assert metrics["test/win/vision"] > 0.8, metrics
    out = Path(cfg.paths.output_dir)
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "mosei")
    assert row["metric"] == "test/acc7" and row["achieved"] == pytest.approx(metrics["test/acc7"])
    assert row["status"] == "not measured"
    wins = (out / "workspace_wins.md").read_text()
    assert "not MOSEI results" in wins and (out / "media" / "workspace_wins.png").stat().st_size > 0
    overall = wins.strip().splitlines()[-1].split("|")
    assert float(overall[5]) == pytest.approx(metrics["test/win/vision"], abs=1e-3)
    rows = [r for p in out.rglob("metrics.csv") for r in csv.DictReader(p.open())]
    cleaned = [r["data/nonfinite_cleaned/audio"] for r in rows if r.get("data/nonfinite_cleaned/audio")]
    assert [float(v) for v in cleaned] == [3.0], "the 3 planted -inf/NaN audio values are on record"
    # the checkpoint alone rebuilds the model (feature sizes travel in its hyperparameters)
    loaded = WorkspacePhase.load_from_checkpoint(out / "checkpoints" / "last.ckpt").eval()
    assert loaded.net.input_dims == DIMS and loaded.net.modalities == ("text", "audio", "vision")


def test_csd_format_with_a_modality_subset_and_late_fusion_runs_end_to_end(
    make_cfg, tmp_path: Path, one_thread
) -> None:
    videos = {"train": [f"t{i}" for i in range(6)], "valid": ["v0", "v1"], "test": ["s0", "s1"]}
    write_csd_release(tmp_path / "mosei", videos, nonfinite=2)
    cfg = make_cfg("experiment=mosei_workspace", f"data.root={tmp_path / 'mosei'}", "data.format=csd",
                   "data.fold_file=folds.json", "model.net.modalities=[audio,text]", "model.net.fusion=late",
                   "trainer.max_epochs=1", *FAST, tiny=False)
    metrics = run(cfg)
    assert {"test/acc7", "test/acc2_has0", "test/f1_non0", "test/mae", "test/corr"} <= metrics.keys()
    assert not any(k.startswith("test/win/") for k in metrics)  # late fusion has no workspace
    assert not (Path(cfg.paths.output_dir) / "workspace_wins.md").exists()
