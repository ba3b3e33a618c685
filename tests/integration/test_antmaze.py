"""Phase 5 on AntMaze (MuJoCo): a tiny dataset recorded in the real AntMaze_UMaze-v5, the antmaze experiment end
to end (goal-conditioned dict observations, CEM over expected free energy with the habit prior, a short rollout).
Skips without the mujoco extra (gymnasium-robotics + mujoco)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import minari
import numpy as np
import pytest
import torch
from helpers.minari import needs_mujoco, recorded, write_antmaze

from brainlab.data.minari import MinariDataModule, datasets_path
from brainlab.phases.active_inference import ActiveInferencePhase
from brainlab.train import run

pytestmark = needs_mujoco
DATASET = "test/antmaze/random-v0"
SMALL = ("model.net.hidden_dim=32", "model.net.latent_dim=8", "model.planner.candidates=32",
         "model.planner.iterations=2", "model.planner.elites=8")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory, write_antmaze, DATASET, episodes=3, max_steps=20, seed=0)


def test_cem_acts_within_the_box_and_follows_the_habit_when_it_is_trusted(root: Path) -> None:
    torch.manual_seed(0)
    dm = MinariDataModule(dataset_id=DATASET, root=str(root), horizon=8, batch_size=8, val_fraction=0.0)
    dm.setup("fit")
    phase = ActiveInferencePhase(net={"_target_": "brainlab.nets.active_inference.ActiveInferenceNet",
                                      "hidden_dim": 32, "latent_dim": 8},
                                 planner={"candidates": 64, "iterations": 2, "elites": 8, "habit_weight": 1e4})
    phase.net.build(dm.obs_dim, dm.action_spec.dim, dm.action_spec.discrete)
    obs = torch.from_numpy(dm.train_episodes[0].obs[0])
    action = phase.act(obs, torch.Generator().manual_seed(0))
    assert action.shape == (8,) and np.all(np.abs(action) <= 1)
    env_action = dm.action_spec.from_unit(action)
    assert dm.make_env().action_space.contains(env_action)
    # a (nearly) infinitely precise habit prior: the plan's first action is the habit's own
    with torch.no_grad():
        habit_plan, _ = phase.planner._habit_rollout(phase.net, phase.net.encode(obs[None])[0][0])
    np.testing.assert_allclose(action, habit_plan[0].numpy(), atol=0.05)


def test_antmaze_experiment_end_to_end_with_a_short_rollout(root: Path, make_cfg: Callable[..., Any]) -> None:
    cfg = make_cfg(
        "experiment=antmaze_active_inference", f"data.dataset_id={DATASET}", f"data.root={root}",
        "data.batch_size=4", "data.val_fraction=0.34", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        *SMALL, "callbacks.rollout_eval.episodes=1", "callbacks.rollout_eval.max_steps=6",
        "callbacks.progress_bar=null", "trainer.enable_model_summary=false", tiny=False,
    )
    assert cfg.model.planning_horizon == 8 and cfg.data.horizon == 8
    metrics = run(cfg)
    assert np.isfinite(metrics["train/free_energy"]) and np.isfinite(metrics["test/free_energy"])
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "rollouts.json").read_text())
    (episode,) = record["episodes"]["agent"]
    assert episode["length"] == 6 and episode["capped"] and episode["success"] is not None
    with datasets_path(root):
        expected = 100 * minari.get_normalized_score(minari.load_dataset(DATASET), np.array([episode["return"]]))
    assert metrics["test/normalized_score_capped"] == pytest.approx(float(expected[0]), abs=1e-6)
    assert metrics["test/success_rate"] in (0.0, 1.0) and "test/random/return" in metrics
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "antmaze")
    assert row["status"] == "not measured" and row["achieved"] is None
    ckpt = sorted((out / "checkpoints").glob("epoch*.ckpt"))[-1]
    net = ActiveInferencePhase.load_from_checkpoint(ckpt, weights_only=True).hparams.net
    assert (net["obs_dim"], net["action_dim"], net["discrete"]) == (109, 8, False)   # 2 + 2 + 105 (v5 ant)
