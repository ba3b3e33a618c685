"""Phase 5: the world model learns by free energy; the expected-free-energy agent beats a random policy."""

from __future__ import annotations

import itertools
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch

from brainlab.data.minari import MinariDataModule, datasets_path, write_dataset
from brainlab.nets.active_inference import ActiveInferenceNet, EFEPlanner
from brainlab.phases.active_inference import ActiveInferencePhase
from brainlab.train import run

DATASET = "test/cartpole/balance-v0"


def balance(obs: np.ndarray, rng: np.random.Generator) -> int:
    """A scripted CartPole controller with 30% random actions (so the data holds failures too)."""
    return int(rng.integers(2)) if rng.random() < 0.3 else int(obs[2] + 0.5 * obs[3] > 0)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("minari_aif")
    write_dataset(DATASET, path, "CartPole-v1", balance, episodes=30, max_steps=150, seed=0,
                  ref_min_score=22.0, ref_max_score=500.0)
    return path


@pytest.fixture
def one_thread() -> Any:
    """Tiny models on a shared 2-core machine: one intra-op thread is many times faster."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_free_energy_falls_during_training(root: Path, one_thread: None) -> None:
    torch.manual_seed(0)
    dm = MinariDataModule(dataset_id=DATASET, root=str(root), horizon=8, batch_size=32, val_fraction=0.2)
    dm.setup("fit")
    net = ActiveInferenceNet(dm.obs_dim, dm.action_spec.dim, dm.action_spec.discrete, hidden_dim=64)
    obs = torch.from_numpy(np.concatenate([e.obs for e in dm.train_episodes]))
    rewards = torch.from_numpy(np.concatenate([e.rewards for e in dm.train_episodes]))
    done = torch.from_numpy(np.concatenate([e.terminated for e in dm.train_episodes]))
    net.set_statistics(obs, rewards, done)
    assert float(net.pref_done) < 0.01  # CartPole's terminal steps pay no more: ending is dispreferred

    def val_free_energy() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return float(np.mean([net.free_energy(b)["free_energy"].item() for b in dm.val_dataloader()]))

    before = val_free_energy()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(4):
        for batch in dm.train_dataloader():
            optimizer.zero_grad()
            net.free_energy(batch)["loss"].backward()
            optimizer.step()
    after = val_free_energy()
    assert after < before - 1.0, (before, after)


def test_tree_enumeration_equals_scoring_every_sequence(one_thread: None) -> None:
    torch.manual_seed(0)
    net = ActiveInferenceNet(5, 3, True, hidden_dim=32).eval()
    s0 = torch.randn(net.latent_dim)
    seqs = torch.tensor(list(itertools.product(range(3), repeat=4)))
    with torch.no_grad():
        g, log_habit = net.expected_free_energy(s0, seqs)
        g_tree, habit_tree = net.expected_free_energy_tree(s0, 4)
    torch.testing.assert_close(g_tree, g, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(habit_tree, log_habit, rtol=1e-4, atol=1e-4)
    planner = EFEPlanner(horizon=4, habit_weight=0.5)
    best = (-g + 0.5 * log_habit).argmax()
    assert planner(net, torch.randn(5)) in range(3)
    with torch.no_grad():
        obs = torch.zeros(5)
        s = net.encode(obs[None])[0][0]
        g, log_habit = net.expected_free_energy(s, seqs)
        best = (-g + 0.5 * log_habit).argmax()
    assert planner(net, obs) == int(seqs[best, 0])


def test_continuous_cem_beats_the_habit_plan_within_bounds(one_thread: None) -> None:
    torch.manual_seed(0)
    net = ActiveInferenceNet(3, 2, False, hidden_dim=32).eval()
    planner = EFEPlanner(horizon=8, candidates=128, iterations=3, elites=16, habit_weight=0.0)
    obs = torch.randn(3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        s0 = net.encode(obs[None])[0][0]
        habit_plan, _ = planner._habit_rollout(net, s0)
        action = planner(net, obs, gen)
        gen.manual_seed(0)
        best = planner._cem_continuous(net, s0, gen)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    np.testing.assert_allclose(action, best[0].numpy())
    with torch.no_grad():
        assert planner.score(net, s0, best[None]) > planner.score(net, s0, habit_plan[None])


def test_experiment_end_to_end_beats_random_and_scores_like_minari(
    root: Path, make_cfg: Callable[..., Any]
) -> None:
    cfg = make_cfg(
        "experiment=minari_active_inference", f"data.dataset_id={DATASET}", f"data.root={root}",
        "data.batch_size=32", "data.eval_episodes=3", "trainer.max_epochs=8", "model.net.hidden_dim=64",
        "model.eval_max_steps=100", "callbacks.progress_bar=null", "trainer.enable_model_summary=false",
        tiny=False,
    )
    metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "rollouts.json").read_text())
    agent = np.array([e["return"] for e in record["episodes"]["agent"]])
    randoms = np.array([e["return"] for e in record["episodes"]["random"]])
    assert len(agent) == len(randoms) == 3
    with datasets_path(root):
        expected = 100 * minari.get_normalized_score(minari.load_dataset(DATASET), agent).mean()
    assert metrics["test/normalized_score"] == pytest.approx(expected, rel=1e-5)
    assert metrics["test/return"] == pytest.approx(agent.mean(), rel=1e-5)
    assert agent.mean() > 1.5 * randoms.mean(), (agent, randoms)
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "antmaze")
    assert row["status"] == "not measured" and row["achieved"] == pytest.approx(expected, rel=1e-5)
    ckpt = sorted((out / "checkpoints").glob("epoch*.ckpt"))[-1]
    phase = ActiveInferencePhase.load_from_checkpoint(ckpt, weights_only=True)
    assert phase.net.built and phase.planner.horizon == 8 and phase.hparams.net["obs_dim"] == 4


class GoalEnv(gym.Env):
    """A stand-in for a goal-conditioned maze (Dict observations, Box actions) from a package not installed."""

    observation_space = gym.spaces.Dict({"observation": gym.spaces.Box(-5, 5, (3,)),
                                         "desired_goal": gym.spaces.Box(-5, 5, (2,))})
    action_space = gym.spaces.Box(-2, 2, (2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self._obs(), {}

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation": self.pos.copy(), "desired_goal": np.ones(2, np.float32)}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        self.pos[:2] = np.clip(self.pos[:2] + 0.1 * action, -5, 5)
        reward = float(np.linalg.norm(self.pos[:2] - 1) < 0.3)
        return self._obs(), reward, bool(reward), False, {}


def test_missing_environment_package_skips_rollouts_with_the_reason(
    tmp_path: Path, make_cfg: Callable[..., Any], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = types.ModuleType("brainlab_missing_envs")
    package.GoalEnv = GoalEnv  # importable only while the dataset is recorded
    monkeypatch.setitem(sys.modules, "brainlab_missing_envs", package)
    gym.register("BrainlabMissingGoal-v0", entry_point="brainlab_missing_envs:GoalEnv", max_episode_steps=30)
    root = tmp_path / "minari"
    write_dataset("test/goal/random-v0", root, "BrainlabMissingGoal-v0",
                  lambda obs, rng: rng.uniform(-2, 2, 2).astype(np.float32), episodes=4, max_steps=30,
                  ref_min_score=0.0, ref_max_score=1.0)
    monkeypatch.delitem(sys.modules, "brainlab_missing_envs")
    gym.registry.pop("BrainlabMissingGoal-v0")

    cfg = make_cfg(
        "experiment=minari_active_inference", "data.dataset_id=test/goal/random-v0", f"data.root={root}",
        "data.batch_size=8", "trainer.max_epochs=1", "model.net.hidden_dim=16", "callbacks.progress_bar=null",
        tiny=False,
    )
    metrics = run(cfg)
    assert "test/normalized_score" not in metrics and np.isfinite(metrics["train/free_energy"])
    assert "rollouts skipped" in capsys.readouterr().out
    out = Path(cfg.paths.output_dir)
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "antmaze")
    assert row["status"] == "not measured" and row["achieved"] is None
    hparams = ActiveInferencePhase.load_from_checkpoint(
        sorted((out / "checkpoints").glob("epoch*.ckpt"))[-1], weights_only=True).hparams.net
    assert (hparams["obs_dim"], hparams["action_dim"], hparams["discrete"]) == (5, 2, False)
