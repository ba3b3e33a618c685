"""Minari data: datasets written with minari.create_dataset_from_buffers, read back through minari's own API."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch
from helpers.minari import balance_policy, needs_mujoco, recorded, write_antmaze, write_cartpole

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.minari import (
    ActionSpec,
    MinariDataModule,
    datasets_path,
    flatten_batch,
    observation_layout,
)

DATASET = "test/cartpole/scripted-v0"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory, write_cartpole, DATASET, episodes=6, max_steps=40, seed=3, random_fraction=0.2)


def module(root: Path, **kw: object) -> MinariDataModule:
    dm = MinariDataModule(dataset_id=DATASET, root=str(root), **{"horizon": 4, "batch_size": 4, **kw})
    dm.setup("fit")
    return dm


def test_round_trip_matches_a_replay_of_the_recording(root: Path) -> None:
    dm = module(root, val_fraction=0.0)
    assert len(dm.train_episodes) == 6 and dm.obs_dim == 4 and dm.action_spec == ActionSpec(True, 2)
    env, balance = gym.make("CartPole-v1"), balance_policy(0.2)
    rng = np.random.default_rng(3)
    for i, ep in enumerate(dm.train_episodes):   # replay the scripted policy: same observations and actions
        obs, _ = env.reset(seed=3 + i)
        np.testing.assert_allclose(ep.obs[0], obs)
        for t in range(len(ep)):
            action = balance(obs, rng)
            assert ep.actions[t] == action
            obs, reward, terminated, _, _ = env.step(action)
            np.testing.assert_allclose(ep.obs[t + 1], obs, rtol=1e-6)
            assert ep.rewards[t] == reward and bool(ep.terminated[t]) == terminated


def test_windows_cover_each_episode_exactly_once_per_epoch(root: Path) -> None:
    dm = module(root, val_fraction=0.0)
    seen: Counter[tuple[int, int]] = Counter()
    for batch in dm.train_dataloader():
        assert batch["obs"].shape[1:] == (6, 4) and batch["action"].shape[1] == 5
        for obs, mask, ep, start in zip(batch["obs"], batch["mask"], batch["episode"], batch["start"], strict=True):
            episode = next(e for e in dm.train_episodes if e.id == int(ep))
            n = int(mask.sum())
            torch.testing.assert_close(obs[: n + 1], torch.from_numpy(episode.obs[int(start) : int(start) + n + 1]))
            seen.update((int(ep), int(start) + t) for t in range(n))
            assert not mask[n:].any()
    expected = {(e.id, t) for e in dm.train_episodes for t in range(len(e))}
    assert set(seen) == expected and set(seen.values()) == {1}


def test_validation_and_test_windows_are_the_held_out_episodes(root: Path) -> None:
    dm = module(root, val_fraction=0.34)
    train, val = {e.id for e in dm.train_episodes}, {e.id for e in dm.val_episodes}
    assert len(val) == 2 and not train & val and len(train | val) == 6
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        windows = [(int(e), int(s)) for b in loader for e, s in zip(b["episode"], b["start"], strict=True)]
        assert {e for e, _ in windows} == val
        assert sum(int(m.sum()) for b in loader for m in b["mask"]) == sum(len(e) for e in dm.val_episodes)


def test_normalized_score_is_minaris_on_a_0_to_100_scale(root: Path) -> None:
    dm = module(root)
    returns = np.array([22.0, 261.0, 500.0, 35.5])
    with datasets_path(root):
        expected = minari.get_normalized_score(minari.load_dataset(DATASET), returns)
    np.testing.assert_allclose(dm.normalized_score(returns), 100 * expected)
    np.testing.assert_allclose(dm.normalized_score(returns)[:3], [0.0, 50.0, 100.0])


def test_generated_dataset_is_not_the_full_published_one(root: Path) -> None:
    assert not module(root).is_full_dataset
    assert not module(root, full_dataset_glob="D4RL/antmaze/*").is_full_dataset
    assert module(root, full_dataset_glob="test/cartpole/*").is_full_dataset
    assert not module(root, full_dataset_glob="test/cartpole/*", max_episodes=3).is_full_dataset


def test_missing_dataset_is_one_clear_message(tmp_path: Path) -> None:
    dm = MinariDataModule(dataset_id="D4RL/antmaze/umaze-v1", root=str(tmp_path))
    with pytest.raises(DataError, match=r"is empty .*main_data.hdf5.*data.download=true"):
        dm.setup("fit")


def test_flatten_batch_equals_gymnasium_flatten() -> None:
    space = gym.spaces.Dict({"achieved_goal": gym.spaces.Box(-1, 1, (2,)), "observation": gym.spaces.Box(-1, 1, (3,)),
                             "mode": gym.spaces.Discrete(3)})
    space.seed(0)
    samples = [space.sample() for _ in range(5)]
    batch = {k: np.stack([s[k] for s in samples]) for k in space.spaces}
    expected = np.stack([gym.spaces.flatten(space, s) for s in samples])
    np.testing.assert_allclose(flatten_batch(space, batch), expected)


def test_observation_layout_names_the_slices_of_the_flat_vector() -> None:
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,)), "desired_goal": gym.spaces.Box(-1, 1, (2,)),
                             "achieved_goal": gym.spaces.Box(-1, 1, (2,)), "mode": gym.spaces.Discrete(3)})
    layout = observation_layout(space)
    assert layout == [("achieved_goal", 0, 2), ("desired_goal", 2, 4), ("mode", 4, 7), ("observation", 7, 10)]
    sample = space.sample()
    flat = gym.spaces.flatten(space, sample)
    for key, start, stop in layout:
        np.testing.assert_allclose(flat[start:stop], gym.spaces.flatten(space[key], sample[key]))
    nested = gym.spaces.Tuple((gym.spaces.Box(-1, 1, (2,)), space))
    assert observation_layout(nested)[:2] == [("0", 0, 2), ("1/achieved_goal", 2, 4)]


@needs_mujoco
def test_antmaze_goal_observations_round_trip_flattened_in_sorted_key_order(tmp_path: Path) -> None:
    write_antmaze(tmp_path, "test/antmaze/random-v0", episodes=2, max_steps=12, seed=5)
    dm = MinariDataModule(dataset_id="test/antmaze/random-v0", root=str(tmp_path), horizon=8, batch_size=4,
                          val_fraction=0.0)
    dm.setup("fit")
    layout = dm.observation_layout
    assert [k for k, _, _ in layout] == ["achieved_goal", "desired_goal", "observation"]
    assert dm.obs_dim == layout[-1][2] and layout[1] == ("desired_goal", 2, 4)
    assert dm.action_spec.dim == 8 and not dm.action_spec.discrete
    assert dm.requirements == ["gymnasium-robotics>=1.4", "mujoco>=3"]
    env = dm.make_env()                           # the recorded spec: entry point + maze kwargs
    assert env.spec.id == "AntMaze_UMaze-v5"
    obs, _ = env.reset(seed=5)                    # the first episode was recorded from reset(seed=5)
    ep = dm.train_episodes[0]
    np.testing.assert_allclose(ep.obs[0], gym.spaces.flatten(env.observation_space, obs), rtol=1e-6)
    np.testing.assert_allclose(dm.flatten_observation(obs), ep.obs[0], rtol=1e-6)
    np.testing.assert_allclose(ep.obs[0, 2:4], obs["desired_goal"], rtol=1e-6)
    env.close()
    assert [len(e) for e in dm.train_episodes] == [12, 12]
    assert sum(int(b["mask"].sum()) for b in dm.train_dataloader()) == 24


def test_box_actions_scale_to_unit_and_back() -> None:
    spec = ActionSpec.from_space(gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0])))
    actions = np.array([[-2.0, 0.0], [0.0, 0.5], [2.0, 1.0]], np.float32)
    np.testing.assert_allclose(spec.to_unit(actions), [[-1, -1], [0, 0], [1, 1]])
    np.testing.assert_allclose(spec.from_unit(spec.to_unit(actions)[1]), actions[1])


def test_bad_config_values_are_refused(root: Path) -> None:
    with pytest.raises(ConfigError, match="data.horizon=0"):
        MinariDataModule(dataset_id=DATASET, root=str(root), horizon=0)
    with pytest.raises(ConfigError, match="data.val_fraction=1"):
        MinariDataModule(dataset_id=DATASET, root=str(root), val_fraction=1)
