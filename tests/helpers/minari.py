"""Minari datasets generated offline for tests: recorded in real gymnasium environments with
`minari.create_dataset_from_buffers` (tests/helpers/minari_writer.py) and read back through minari's API.

- CartPole (classic control, no extra packages): a scripted balancing controller with some random actions.
- AntMaze_UMaze-v5 (gymnasium-robotics + mujoco): random joint torques, a few short episodes.
- A goal-conditioned stand-in environment from a package that is gone by evaluation time (missing-package path).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from helpers.minari_writer import write_dataset

ANTMAZE_ENV = "gymnasium_robotics:AntMaze_UMaze-v5"
MUJOCO_REQUIREMENTS = ["gymnasium-robotics>=1.4", "mujoco>=3"]
HAS_MUJOCO = all(importlib.util.find_spec(m) is not None for m in ("mujoco", "gymnasium_robotics"))
needs_mujoco = pytest.mark.skipif(not HAS_MUJOCO, reason="AntMaze needs the mujoco extra: pip install -e '.[mujoco]'")


def balance_policy(random_fraction: float) -> Callable[[np.ndarray, np.random.Generator], int]:
    """A scripted CartPole controller (push towards the pole's fall) with `random_fraction` random actions."""

    def policy(obs: np.ndarray, rng: np.random.Generator) -> int:
        return int(rng.integers(2)) if rng.random() < random_fraction else int(obs[2] + 0.5 * obs[3] > 0)

    return policy


def write_cartpole(root: Path, dataset_id: str, episodes: int, max_steps: int, seed: int = 0,
                   random_fraction: float = 0.2) -> Any:
    """CartPole-v1 episodes of `balance_policy`; ref scores: random policy ~22, the environment's maximum 500."""
    return write_dataset(dataset_id, root, "CartPole-v1", balance_policy(random_fraction), episodes=episodes,
                         max_steps=max_steps, seed=seed, ref_min_score=22.0, ref_max_score=500.0)


def recorded(tmp_path_factory: pytest.TempPathFactory, write: Callable[..., Any], dataset_id: str, **kw: Any) -> Path:
    """A fresh MINARI_DATASETS_PATH holding `dataset_id` written by `write(root, dataset_id, **kw)` (for
    module-scoped fixtures)."""
    path = tmp_path_factory.mktemp(dataset_id.replace("/", "_"))
    write(path, dataset_id, **kw)
    return path


def random_torques(obs: Any, rng: np.random.Generator) -> np.ndarray:
    """The ant's 8 joint torques, uniform in the action box [-1, 1]."""
    return rng.uniform(-1, 1, 8).astype(np.float32)


def write_antmaze(root: Path, dataset_id: str, episodes: int = 3, max_steps: int = 20, seed: int = 0) -> Any:
    """A tiny AntMaze_UMaze-v5 dataset (sparse goal reward: ref scores 0 and 1, D4RL's AntMaze convention)."""
    return write_dataset(dataset_id, root, ANTMAZE_ENV, random_torques, episodes=episodes, max_steps=max_steps,
                         seed=seed, ref_min_score=0.0, ref_max_score=1.0, requirements=MUJOCO_REQUIREMENTS)


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


MISSING_PACKAGE = "brainlab_missing_envs"


def write_missing_env_dataset(root: Path, dataset_id: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A dataset recorded in an environment whose package (a temporary module) is gone afterwards, so
    `recover_environment` fails with ModuleNotFoundError as for AntMaze without gymnasium-robotics."""
    package = types.ModuleType(MISSING_PACKAGE)
    package.GoalEnv = GoalEnv
    monkeypatch.setitem(sys.modules, MISSING_PACKAGE, package)
    gym.register("BrainlabMissingGoal-v0", entry_point=f"{MISSING_PACKAGE}:GoalEnv", max_episode_steps=30)
    try:
        return write_dataset(dataset_id, root, "BrainlabMissingGoal-v0",
                             lambda obs, rng: rng.uniform(-2, 2, 2).astype(np.float32), episodes=4, max_steps=30,
                             ref_min_score=0.0, ref_max_score=1.0, requirements=["brainlab-missing-envs>=1.0"])
    finally:
        monkeypatch.delitem(sys.modules, MISSING_PACKAGE)
        gym.registry.pop("BrainlabMissingGoal-v0")
