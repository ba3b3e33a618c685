"""Phase 5: active inference learned offline from a Minari dataset.

fit: the generative world model (`model.net`, an ActiveInferenceNet) minimises variational free energy on
windows of the dataset; its observation normaliser and outcome preferences are set from the training data.
val: the same free energy on held-out episodes (`val/free_energy`).
test = evaluation: each test batch is one episode seed; the agent acts in the dataset's own environment
(`recover_environment(eval_env=True)`) by minimising expected free energy over `planning_horizon` steps
(`policy: efe`; `habit` = the behaviour-cloned prior alone, `random` = uniform actions). Logged:
`test/return`, `test/normalized_score` (minari's, on the 0-100 scale) and the same for a random policy on the
same seeds; the episodes go to `rollouts.json` in the run dir. Where the environment cannot be built (e.g. its
package is missing) the rollouts are skipped with the reason and the score is left unmeasured.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainlab.errors import ConfigError
from brainlab.nets.active_inference import EFEPlanner
from brainlab.phases.base import Phase, as_container

log = logging.getLogger(__name__)

POLICIES = ("efe", "habit", "random")


class ActiveInferencePhase(Phase):
    """Trains the world model by free energy; evaluates the expected-free-energy agent by rollouts."""

    def __init__(
        self,
        net: nn.Module | dict[str, Any],
        planning_horizon: int = 8,
        planner: dict[str, Any] | None = None,
        kl_weight: float = 1.0,
        overshoot_weight: float = 1.0,
        reward_quantile: float = 0.9,
        done_preference: float = 1e-3,
        policy: str = "efe",
        eval_max_steps: int | None = None,
        random_baseline: bool = True,
        num_threads: int | None = 1,
        **base: Any,
    ) -> None:
        super().__init__(net=net, **base)
        planner = as_container(planner) or {}
        self.hparams["planner"] = planner  # plain containers only: checkpoints load with weights_only=True
        if planning_horizon < 1:
            raise ConfigError(f"model.planning_horizon={planning_horizon} must be >= 1")
        if policy not in POLICIES:
            raise ConfigError(f"model.policy={policy!r} is not one of {POLICIES}")
        self.planner = EFEPlanner(horizon=planning_horizon, **planner)
        self.kl_weight, self.overshoot_weight = kl_weight, overshoot_weight
        self.reward_quantile, self.done_preference = reward_quantile, done_preference
        self.policy, self.eval_max_steps, self.random_baseline = policy, eval_max_steps, random_baseline
        self.num_threads = num_threads  # Phase.limit_threads applies it while fitting/testing
        self.env: Any = None
        self.skip_reason = ""
        self.rollouts: dict[str, list[dict[str, float]]] = {}
        self.report_files = ["rollouts.json"]

    # --- the net is sized by the dataset -----------------------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        dm.setup(stage)
        spec = dm.action_spec
        if not self.net.built:
            self.net.build(dm.obs_dim, spec.dim, spec.discrete)
            self.hparams.net.update(obs_dim=dm.obs_dim, action_dim=spec.dim, discrete=spec.discrete)
        elif (self.net.obs_dim, self.net.action_dim, self.net.discrete) != (dm.obs_dim, spec.dim, spec.discrete):
            raise ConfigError(
                f"model.net was built for obs_dim={self.net.obs_dim}, action_dim={self.net.action_dim} but "
                f"data.dataset_id={dm.dataset_id} has obs_dim={dm.obs_dim}, action_dim={spec.dim}: "
                "use a checkpoint trained on this dataset"
            )
        if stage == "fit":
            eps = dm.train_episodes
            self.net.set_statistics(
                torch.from_numpy(np.concatenate([e.obs for e in eps])),
                torch.from_numpy(np.concatenate([e.rewards for e in eps])),
                torch.from_numpy(np.concatenate([e.terminated for e in eps])),
                self.reward_quantile, self.done_preference,
            )

    # --- free energy ----------------------------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        terms = self.net.free_energy(batch, self.kl_weight, self.overshoot_weight)
        n = int(batch["mask"].shape[0])
        for key, value in terms.items():
            self.log(f"{stage}/{key}", value, prog_bar=key in ("loss", "free_energy"), batch_size=n)
        return terms["loss"]

    # --- evaluation by rollouts -------------------------------------------------------------------------
    def on_test_start(self) -> None:
        super().on_test_start()
        self.rollouts = {"agent": [], "random": []}
        self.skip_reason = ""
        try:
            self.env = self.trainer.datamodule.make_env()
        except Exception as exc:  # gymnasium raises several types for a missing env package
            self.env = None
            self.skip_reason = (f"environment of {self.trainer.datamodule.dataset_id} cannot be built "
                                f"({type(exc).__name__}: {exc}); for MuJoCo tasks (AntMaze) install "
                                "gymnasium-robotics and mujoco")
            log.warning("rollouts skipped: %s", self.skip_reason)

    def act(self, obs: torch.Tensor, env: Any, gen: torch.Generator) -> Any:
        dm = self.trainer.datamodule
        if self.policy == "random":
            return env.action_space.sample()
        if self.policy == "habit":
            action = self.net(obs[None])[0]
            return dm.action_spec.from_unit(action.cpu().numpy())
        return dm.action_spec.from_unit(self.planner(self.net, obs, gen))

    def rollout(self, seed: int, random_policy: bool = False) -> dict[str, float]:
        """One episode in the evaluation environment; returns its return and length."""
        from brainlab.data.minari import flatten_batch

        env, dm = self.env, self.trainer.datamodule
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        total, steps = 0.0, 0
        while True:
            if random_policy:
                action = env.action_space.sample()
            else:
                flat = flatten_batch(dm.dataset.observation_space, _batched(obs))[0]
                action = self.act(torch.as_tensor(flat, device=self.device), env, gen)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            steps += 1
            if terminated or truncated or (self.eval_max_steps is not None and steps >= self.eval_max_steps):
                return {"seed": seed, "return": total, "length": steps}

    def test_step(self, batch: Any, batch_idx: int) -> None:
        if self.env is None:
            return
        seed = int(batch[0][0])
        self.net.eval()
        with torch.no_grad():
            self.rollouts["agent"].append(self.rollout(seed))
            if self.random_baseline:
                self.rollouts["random"].append(self.rollout(seed, random_policy=True))

    def on_test_epoch_end(self) -> None:
        if self.env is None:
            print(f"active inference: rollouts skipped: {self.skip_reason}")
            return
        dm = self.trainer.datamodule
        summary: dict[str, float] = {}
        for name, prefix in (("agent", "test"), ("random", "test/random")):
            episodes = self.rollouts[name]
            if not episodes:
                continue
            returns = np.array([e["return"] for e in episodes])
            summary[f"{prefix}/return"] = float(returns.mean())
            summary[f"{prefix}/episode_length"] = float(np.mean([e["length"] for e in episodes]))
            try:
                summary[f"{prefix}/normalized_score"] = float(dm.normalized_score(returns).mean())
            except ValueError as exc:
                log.warning("no normalised score: %s (the dataset lacks ref_min_score/ref_max_score)", exc)
        for key, value in summary.items():
            self.log(key, value, batch_size=1)
        out = Path(self.trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {"dataset_id": dm.dataset_id, "policy": self.policy, "planning_horizon": self.planner.horizon,
                  "full_dataset": dm.is_full_dataset, "summary": summary, "episodes": self.rollouts}
        tmp = out / "rollouts.json.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(out / "rollouts.json")

    def on_test_end(self) -> None:
        super().on_test_end()
        if self.env is not None:
            self.env.close()
            self.env = None


def _batched(obs: Any) -> Any:
    """One observation (array or dict of arrays) as a batch of one."""
    if isinstance(obs, dict):
        return {k: _batched(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_batched(v) for v in obs)
    return np.asarray(obs)[None]
