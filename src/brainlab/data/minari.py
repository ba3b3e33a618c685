"""Offline RL data from Minari (the successor of D4RL) as a DataModule of fixed-length windows.

Datasets are read with Minari's own API (`minari.load_dataset`, `iterate_episodes`) from `data.root`, which is
used as `MINARI_DATASETS_PATH`. An episode of T steps (T+1 observations) becomes ceil(T / (horizon+1)) windows of
`horizon + 1` steps; the last window of an episode is padded and masked, so every step is seen exactly once per
epoch. A window holds `obs (L+1, obs_dim)`, `action (L,)|(L, act_dim)`, `reward (L,)`, `terminated (L,)`,
`mask (L,)`. Box actions are scaled to [-1, 1].

Observations are flattened exactly as `gymnasium.spaces.flatten` flattens one: Box -> its values, Discrete ->
one-hot, Dict -> its entries concatenated in the Dict space's key order, which gymnasium sorts. A goal-conditioned
AntMaze observation {observation, achieved_goal, desired_goal} thus becomes
`[achieved_goal (2) | desired_goal (2) | observation (27 for -v4, 105 for -v5)]`; `observation_layout` names the
slices and is logged at setup.

The test loader gives the same windows over the held-out (validation) episodes, for `test/free_energy`; the
agent's rollouts in the dataset's environment are the `callbacks.rollout_eval` callback's job.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.base import DataModule, holds_files, missing_data

log = logging.getLogger(__name__)


@contextmanager
def datasets_path(root: str | Path) -> Iterator[None]:
    """Point Minari at `root` (MINARI_DATASETS_PATH) for the duration of a call."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def import_minari() -> Any:
    try:
        import minari
    except ImportError as exc:  # h5py / Pillow are imported by minari but not always installed with it
        raise ConfigError(f"data=minari needs minari, h5py and Pillow: pip install minari h5py Pillow ({exc})") from exc
    return minari


def flatten_batch(space: Any, obs: Any) -> np.ndarray:
    """A batch of observations (leading axis = steps) flattened as `gymnasium.spaces.flatten` flattens one."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        arr = np.asarray(obs, dtype=np.float32)
        return arr.reshape(arr.shape[0], -1)
    if isinstance(space, spaces.Discrete):
        idx = np.asarray(obs, dtype=np.int64) - int(space.start)
        return np.eye(int(space.n), dtype=np.float32)[idx]
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten_batch(s, obs[k]) for k, s in space.spaces.items()], axis=-1)
    if isinstance(space, spaces.Tuple):
        return np.concatenate([flatten_batch(s, o) for s, o in zip(space.spaces, obs, strict=True)], axis=-1)
    raise ConfigError(f"observation space {space} is not supported (Box, Discrete, Dict or Tuple of them)")


def observation_layout(space: Any, name: str = "") -> list[tuple[str, int, int]]:
    """`(name, start, stop)` of each leaf of `space` in the flat vector of `flatten_batch` (Dict keys joined by
    '/', Tuple entries by index), e.g. AntMaze: [(achieved_goal, 0, 2), (desired_goal, 2, 4), (observation, 4, 31)]."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict | spaces.Tuple):
        items = space.spaces.items() if isinstance(space, spaces.Dict) else enumerate(space.spaces)
        out, offset = [], 0
        for key, sub in items:
            for leaf, start, stop in observation_layout(sub, f"{name}/{key}" if name else str(key)):
                out.append((leaf, start + offset, stop + offset))
            offset = out[-1][2]
        return out
    return [(name or "obs", 0, int(spaces.flatdim(space)))]


@dataclass(frozen=True)
class ActionSpec:
    """What the agent needs to know of the action space: discrete `n` actions or a Box of `dim` in [low, high]."""

    discrete: bool
    dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def from_space(cls, space: Any) -> ActionSpec:
        from gymnasium import spaces

        if isinstance(space, spaces.Discrete):
            return cls(discrete=True, dim=int(space.n))
        if isinstance(space, spaces.Box) and len(space.shape) == 1:
            low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ConfigError(f"action space {space} is unbounded: the planner needs finite Box bounds")
            return cls(discrete=False, dim=int(space.shape[0]), low=low, high=high)
        raise ConfigError(f"action space {space} is not supported (Discrete or 1-d Box)")

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Dataset actions as the model sees them: indices, or Box actions scaled to [-1, 1]."""
        if self.discrete:
            return np.asarray(actions, dtype=np.int64).reshape(-1)
        a = np.asarray(actions, dtype=np.float32).reshape(len(actions), self.dim)
        return np.clip(2 * (a - self.low) / (self.high - self.low) - 1, -1, 1)

    def from_unit(self, action: np.ndarray) -> Any:
        """A model action as the environment takes it."""
        if self.discrete:
            return int(action)
        return (self.low + (np.asarray(action, np.float32) + 1) * 0.5 * (self.high - self.low)).astype(np.float32)


@dataclass
class Episode:
    """One episode as arrays: obs (T+1, D), actions (T,)|(T, A), rewards (T,), terminated (T,)."""

    id: int
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)


class WindowDataset(Dataset):
    """Non-overlapping windows of `length` steps over episodes; each step lands in exactly one window."""

    def __init__(self, episodes: list[Episode], length: int) -> None:
        self.episodes = episodes
        self.length = length
        self.index = [(e, start) for e, ep in enumerate(episodes) for start in range(0, len(ep), length)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, start = self.index[i]
        ep, length = self.episodes[e], self.length
        n = min(length, len(ep) - start)
        obs = np.zeros((length + 1, ep.obs.shape[1]), np.float32)
        obs[: n + 1] = ep.obs[start : start + n + 1]
        action = np.zeros((length, *ep.actions.shape[1:]), ep.actions.dtype)
        action[:n] = ep.actions[start : start + n]
        reward, terminated, mask = (np.zeros(length, np.float32) for _ in range(3))
        reward[:n], terminated[:n], mask[:n] = ep.rewards[start : start + n], ep.terminated[start : start + n], 1
        return {
            "obs": torch.from_numpy(obs), "action": torch.from_numpy(action), "reward": torch.from_numpy(reward),
            "terminated": torch.from_numpy(terminated), "mask": torch.from_numpy(mask),
            "episode": torch.tensor(ep.id), "start": torch.tensor(start),
        }


class MinariDataModule(DataModule):
    """Windows of a Minari dataset for training the world model; evaluation seeds for rollouts at test."""

    def __init__(
        self,
        dataset_id: str,
        root: str,
        download: bool = False,
        horizon: int = 8,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        max_episodes: int | None = None,
        full_dataset_glob: str | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if horizon < 1:
            raise ConfigError(f"data.horizon={horizon} must be >= 1 (windows are horizon+1 steps)")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.val_fraction={val_fraction} must be in [0, 1)")
        self.dataset_id, self.root, self.download = dataset_id, Path(root), download
        self.horizon, self.val_fraction = horizon, val_fraction
        self.max_episodes = max_episodes
        self.full_dataset_glob, self.seed = full_dataset_glob, seed
        self.dataset: Any = None
        self.action_spec: ActionSpec | None = None
        self.obs_dim = 0
        self.train_episodes: list[Episode] = []
        self.val_episodes: list[Episode] = []

    # --- loading -----------------------------------------------------------------------------------
    def load(self) -> Any:
        """The MinariDataset (downloaded first when `data.download=true`)."""
        minari = import_minari()
        if self.download:  # a missing root is created only to download into
            self.root.mkdir(parents=True, exist_ok=True)
        with datasets_path(self.root):
            local = self.root.joinpath(*self.dataset_id.split("/"))
            if not local.is_dir() or not holds_files(local):
                if not self.download:
                    fix = (f"pass data.download=true to fetch it with minari, or run "
                           f"`MINARI_DATASETS_PATH={self.root} minari download {self.dataset_id}`")
                    raise missing_data(
                        f"Minari dataset {self.dataset_id!r}", local, [f"{local}/data/main_data.hdf5"], fix,
                        root=self.root,
                        not_found=(f"Minari dataset {self.dataset_id!r} not found under data.root={self.root} "
                                   f"(expected {local}/data/main_data.hdf5): {fix}"))
                try:
                    minari.download_dataset(self.dataset_id)
                except Exception as exc:  # network, unknown id, remote storage: minari raises several types
                    raise DataError(
                        f"minari could not download {self.dataset_id!r} into {self.root} ({type(exc).__name__}: "
                        f"{exc}): check the id with `minari list remote` and the network, or copy the dataset "
                        f"folder to {local}"
                    ) from exc
            try:
                return minari.load_dataset(self.dataset_id)
            except (OSError, ValueError, KeyError) as exc:
                raise DataError(
                    f"Minari dataset {self.dataset_id!r} at {local} cannot be read ({exc}): delete that folder "
                    "and download it again (data.download=true)"
                ) from exc

    def episodes(self) -> list[Episode]:
        """Every episode (or the first `max_episodes`) through `iterate_episodes`, as flat arrays."""
        out = []
        for ep in self.dataset.iterate_episodes():
            if self.max_episodes is not None and len(out) >= self.max_episodes:
                break
            obs = flatten_batch(self.dataset.observation_space, ep.observations)
            actions = self.action_spec.to_unit(ep.actions)
            rewards = np.asarray(ep.rewards, np.float32).reshape(-1)
            if len(obs) != len(rewards) + 1 or len(actions) != len(rewards):
                raise DataError(f"episode {ep.id} of {self.dataset_id} has inconsistent lengths; re-download it")
            out.append(Episode(int(ep.id), obs, actions, rewards, np.asarray(ep.terminations, np.float32)))
        if not out:
            raise DataError(f"Minari dataset {self.dataset_id!r} has no episodes; re-download it")
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self.dataset = self.load()
        self.action_spec = ActionSpec.from_space(self.dataset.action_space)
        episodes = self.episodes()
        self.obs_dim = episodes[0].obs.shape[1]
        layout = ", ".join(f"{k}[{a}:{b}]" for k, a, b in self.observation_layout)
        order = np.random.default_rng(self.seed).permutation(len(episodes))
        n_val = int(round(self.val_fraction * len(episodes))) if len(episodes) > 1 else 0
        n_val = min(max(n_val, 1 if self.val_fraction > 0 and len(episodes) > 1 else 0), len(episodes) - 1)
        self.val_episodes = [episodes[i] for i in sorted(order[:n_val])]
        self.train_episodes = [episodes[i] for i in sorted(order[n_val:])]
        log.info("minari %s: %d train / %d val episodes, %d steps; observation = %s", self.dataset_id,
                 len(self.train_episodes), len(self.val_episodes), sum(map(len, episodes)), layout)

    # --- what the agent and the target table need ---------------------------------------------------
    @property
    def is_full_dataset(self) -> bool:
        """True only for a complete published dataset matching `full_dataset_glob` (e.g. D4RL/antmaze/*)."""
        if self.max_episodes is not None or not self.full_dataset_glob:
            return False
        return fnmatch.fnmatch(self.dataset_id, self.full_dataset_glob)

    def reward_stats(self) -> dict[str, float]:
        """Statistics of the training rewards (the agent's preferences are learned from them)."""
        rewards = np.concatenate([e.rewards for e in self.train_episodes])
        terminated = np.concatenate([e.terminated for e in self.train_episodes])
        return {"mean": float(rewards.mean()), "std": float(rewards.std()), "max": float(rewards.max()),
                "min": float(rewards.min()), "termination_rate": float(terminated.mean())}

    def normalized_score(self, returns: np.ndarray) -> np.ndarray:
        """Minari's normalised score of episode returns, on the 0-100 scale (D4RL's convention)."""
        minari = import_minari()
        return 100.0 * np.asarray(minari.get_normalized_score(self.dataset, np.asarray(returns, np.float64)))

    @property
    def observation_space(self) -> Any:
        return self.dataset.observation_space

    @property
    def observation_layout(self) -> list[tuple[str, int, int]]:
        """Where each part of a (Dict) observation sits in the flat vector the agent sees."""
        return observation_layout(self.dataset.observation_space)

    def flatten_observation(self, obs: Any) -> np.ndarray:
        """One environment observation (array or dict of arrays) as the flat float32 vector of the windows."""
        return flatten_batch(self.dataset.observation_space, _batched(obs))[0]

    @property
    def requirements(self) -> list[str]:
        """The packages the dataset declares for its environment (minari metadata), e.g. gymnasium-robotics."""
        return list(self.dataset.storage.metadata.get("requirements") or [])

    def make_env(self) -> Any:
        """The dataset's evaluation environment (`recover_environment(eval_env=True)`)."""
        return self.dataset.recover_environment(eval_env=True)

    # --- loaders -----------------------------------------------------------------------------------
    def _loader(self, episodes: list[Episode], shuffle: bool) -> DataLoader:
        return self.dataloader(WindowDataset(episodes, self.horizon + 1), shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_episodes, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_episodes or self.train_episodes, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_episodes or self.train_episodes, shuffle=False)


def _batched(obs: Any) -> Any:
    """One observation (array, or dict / tuple of arrays) as a batch of one."""
    if isinstance(obs, dict):
        return {k: _batched(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_batched(v) for v in obs)
    return np.asarray(obs)[None]
