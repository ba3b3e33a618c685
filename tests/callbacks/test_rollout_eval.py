"""The rollout evaluation callback: seeded episodes, minari's normalised score in the target table, honest skips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
from helpers.config import QUIET
from helpers.minari import recorded, write_cartpole, write_missing_env_dataset

from brainlab.callbacks.rollout_eval import RolloutEvaluation
from brainlab.core.errors import ConfigError
from brainlab.data.minari import datasets_path
from brainlab.phases.active_inference import ActiveInferencePhase
from brainlab.train import run

DATASET = "test/cartpole/rollouts-v0"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory, write_cartpole, DATASET, episodes=8, max_steps=60, seed=1, random_fraction=0.3)


def test_rollouts_are_seeded_and_cut_at_max_steps() -> None:
    env = gym.make("CartPole-v1")
    callback = RolloutEvaluation(max_steps=15)
    push_right = lambda obs: 1  # noqa: E731
    episodes = [callback.rollout(env, s, push_right) for s in range(10)]
    assert [callback.rollout(env, s, push_right) for s in range(10)] == episodes   # same seed, same episode
    assert len({e["length"] for e in episodes}) > 1                                  # the seed sets the start
    first = episodes[7]
    assert first["length"] < 15 and not first["capped"] and first["success"] is None   # falls over quickly
    steady = callback.rollout(env, 7, lambda obs: int(obs[2] + 0.5 * obs[3] > 0))
    assert steady == {"seed": 7, "return": 15.0, "length": 15, "success": None, "capped": True}


def test_bad_settings_and_non_acting_phases_are_refused() -> None:
    with pytest.raises(ConfigError, match="rollout_eval.episodes=0"):
        RolloutEvaluation(episodes=0)
    with pytest.raises(ConfigError, match="rollout_eval.max_steps=0"):
        RolloutEvaluation(max_steps=0)
    with pytest.raises(ConfigError, match="needs an environment datamodule"):
        RolloutEvaluation().check(object(), object())


def test_uncapped_score_is_minaris_and_fills_the_row_and_random_is_seeded(
    root: Path, make_cfg: Callable[..., Any]
) -> None:
    cfg = make_cfg("experiment=minari_active_inference", f"data.dataset_id={DATASET}", f"data.root={root}",
                   "data.batch_size=16", "trainer.max_epochs=1", "model.net.hidden_dim=16", "model.policy=random",
                   "callbacks.rollout_eval.episodes=4", "callbacks.rollout_eval.seed=123", *QUIET, tiny=False)
    metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "rollouts.json").read_text())
    agent, randoms = record["episodes"]["agent"], record["episodes"]["random"]
    assert [e["seed"] for e in agent] == [e["seed"] for e in randoms] == [123, 124, 125, 126]
    env = gym.make("CartPole-v1")                       # the baseline replays: seeded env and action space
    for episode in randoms:
        obs, _ = env.reset(seed=episode["seed"])
        env.action_space.seed(episode["seed"])
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + reward, terminated or truncated
        assert episode["return"] == total
    returns = np.array([e["return"] for e in agent])
    with datasets_path(root):
        expected = 100 * minari.get_normalized_score(minari.load_dataset(DATASET), returns)
    np.testing.assert_allclose([e["normalized_score"] for e in agent], expected, rtol=1e-6)
    assert metrics["test/normalized_score"] == pytest.approx(expected.mean(), rel=1e-5)
    assert metrics["test/random/normalized_score"] == pytest.approx(
        np.mean([e["normalized_score"] for e in randoms]), rel=1e-5)
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "antmaze")
    assert row["achieved"] == pytest.approx(expected.mean(), rel=1e-5)
    # a CartPole fixture never fills the antmaze row: the row names the data it describes
    assert row["status"] == "not measured" and "D4RL/antmaze/*" in row["note"]


def test_missing_environment_package_skips_rollouts_with_one_reason(
    tmp_path: Path, make_cfg: Callable[..., Any], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "minari"
    write_missing_env_dataset(root, "test/goal/random-v0", monkeypatch)
    cfg = make_cfg("experiment=minari_active_inference", "data.dataset_id=test/goal/random-v0", f"data.root={root}",
                   "data.batch_size=8", "trainer.max_epochs=1", "model.net.hidden_dim=16", *QUIET, tiny=False)
    metrics = run(cfg)
    assert not any("normalized_score" in k or "return" in k for k in metrics)
    assert np.isfinite(metrics["train/free_energy"]) and np.isfinite(metrics["test/free_energy"])
    printed = [line for line in capsys.readouterr().out.splitlines() if "rollouts skipped" in line]
    assert len(printed) == 1 and "ModuleNotFoundError" in printed[0]
    assert "pip install 'brainlab-missing-envs>=1.0'" in printed[0]
    out = Path(cfg.paths.output_dir)
    row = next(r for r in json.loads((out / "targets.json").read_text()) if r["id"] == "antmaze")
    assert row["status"] == "not measured" and row["achieved"] is None
    assert printed[0] in (out / "targets.md").read_text()
    assert json.loads((out / "rollouts.json").read_text())["skip_reason"] == printed[0]
    hparams = ActiveInferencePhase.load_from_checkpoint(
        sorted((out / "checkpoints").glob("epoch*.ckpt"))[-1], weights_only=True).hparams.net
    assert (hparams["obs_dim"], hparams["action_dim"], hparams["discrete"]) == (5, 2, False)
