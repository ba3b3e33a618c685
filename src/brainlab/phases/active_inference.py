"""Phase 5: active inference learned offline from a Minari dataset.

fit: the generative world model (`model.net`, an ActiveInferenceNet) minimises variational free energy on
windows of the dataset; its observation normaliser and outcome preferences are set from the training data.
val: the same free energy on held-out episodes (`val/free_energy`).
test: the free energy on the held-out windows (`test/free_energy`).
acting: `act(obs)` picks the action minimising expected free energy over `planning_horizon` steps
(`policy: efe`; `habit` = the behaviour-cloned prior alone, `random` = uniform actions). The rollouts in the
dataset's environment and the normalised score are the evaluation callback's (`callbacks.rollout_eval`,
brainlab.callbacks.rollout_eval.RolloutEvaluation), which the experiment adds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.nets.active_inference import EFEPlanner
from brainlab.phases.base import Phase, as_container, per_stage

log = logging.getLogger(__name__)

POLICIES = ("efe", "habit", "random")


class ActiveInferencePhase(Phase):
    """Trains the world model by free energy; acts by expected free energy (`act`)."""

    #: the terms of `ActiveInferenceNet.free_energy`, per stage
    logged_metrics = per_stage("loss", "free_energy", "recon", "kl", "outcome", "overshoot", "habit")

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
        self.policy = policy
        self.num_threads = num_threads  # Phase.limit_threads applies it while fitting/testing (and rollouts)

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

    # --- acting (used by callbacks.rollout_eval) --------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray | int:
        """The agent's action for one flat observation, in the model's units (an index, or a Box action in
        [-1, 1]; `datamodule.action_spec.from_unit` maps it to the environment's)."""
        if self.policy == "random":
            if self.net.discrete:
                return int(torch.randint(self.net.action_dim, (), generator=generator, device=obs.device))
            u = torch.rand(self.net.action_dim, generator=generator, device=obs.device)
            return (2 * u - 1).cpu().numpy()
        if self.policy == "habit":
            action = self.net(obs[None])[0]
            return int(action) if self.net.discrete else action.cpu().numpy()
        return self.planner(self.net, obs, generator)
