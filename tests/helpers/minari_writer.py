"""Record scripted episodes of a gymnasium environment as a Minari dataset (for tests and demos)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainlab.data.minari import datasets_path, import_minari


def stack(items: list[Any]) -> Any:
    """Steps (arrays, or dicts / tuples of arrays) stacked along a new leading axis, structure kept."""
    first = items[0]
    if isinstance(first, dict):
        return {k: stack([i[k] for i in items]) for k in first}
    if isinstance(first, tuple):
        return tuple(stack([i[j] for i in items]) for j in range(len(first)))
    return np.asarray(items)


def write_dataset(
    dataset_id: str,
    root: str | Path,
    env_id: str,
    policy: Any,
    episodes: int,
    max_steps: int | None = None,
    seed: int = 0,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
    requirements: list[str] | None = None,
) -> Any:
    """Record `episodes` of `policy(obs, rng) -> action` in gymnasium env `env_id` as a Minari dataset under
    `root` (with `minari.create_dataset_from_buffers`): small offline datasets for tests and demos.

    `env_id` may name the module that registers it (`gymnasium_robotics:AntMaze_UMaze-v5`); the dataset stores the
    env's full spec (entry point and `env_kwargs`), so `recover_environment` needs the package, not a registration.
    Episodes are cut at `max_steps` (recorded as truncations)."""
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    minari = import_minari()
    env = gym.make(env_id, **(env_kwargs or {}))
    rng = np.random.default_rng(seed)
    buffers = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        env.action_space.seed(seed + ep)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        while True:
            action = policy(obs, rng)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            truncated = bool(truncated) or (max_steps is not None and len(actions) >= max_steps)
            terms.append(bool(terminated))
            truncs.append(truncated and not terminated)
            if terminated or truncated:
                break
        buffers.append(EpisodeBuffer(id=ep, observations=stack(observations), actions=np.asarray(actions),
                                     rewards=rewards, terminations=terms, truncations=truncs))
    env.close()
    with datasets_path(root):
        return minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env.spec, algorithm_name="scripted", author="brainlab",
            author_email="brainlab@example.org", code_permalink="https://example.org/brainlab",
            description=f"{episodes} scripted episodes of {env.spec.id}", eval_env=env.spec,
            ref_min_score=ref_min_score, ref_max_score=ref_max_score, requirements=requirements,
        )
