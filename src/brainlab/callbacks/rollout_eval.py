"""Evaluation by rollouts: N seeded episodes of the agent in an offline-RL dataset's own environment.

At the end of the test epoch (so with the weights `trainer.test` loaded, e.g. the best-validation checkpoint) the
callback builds the dataset's evaluation environment (`datamodule.make_env()`, Minari's
`recover_environment(eval_env=True)`), plays `episodes` episodes with seeds `seed, seed+1, ...` in which the
phase's `act(obs, generator)` chooses every action (for active inference: the expected-free-energy planner), and
logs `test/return`, `test/return_std`, `test/episode_length`, `test/normalized_score` (Minari's
`get_normalized_score`, on D4RL's 0-100 scale), `test/normalized_score_std` and, for goal-reaching tasks whose
`info` reports `success` (AntMaze), `test/success_rate`; `random_baseline` plays the same seeds with uniformly
random actions (`test/random/...`). The episodes go to `rollouts.json`, a summary to `rollouts.md` (which the
target table inlines into targets.md).

Honest numbers: episodes cut short by `max_steps` are not the benchmark's protocol, so their score is logged as
`test/normalized_score_capped` and never fills the target row. Where the environment cannot be built (its
package, e.g. gymnasium-robotics/mujoco for AntMaze, is missing) the rollouts are skipped with one line giving
the reason and the fix (logged, printed, and in targets.md); the target row then stays `not measured`.

The datamodule provides `make_env()`, `flatten_observation(obs)`, `action_spec.from_unit(a)`,
`normalized_score(returns)` and `dataset_id` (brainlab.data.minari.MinariDataModule does).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from brainlab.core.errors import ConfigError

log = logging.getLogger(__name__)

DATAMODULE_API = ("make_env", "flatten_observation", "action_spec", "normalized_score", "requirements", "dataset_id",
                  "is_full_dataset")  # brainlab.core.datamodule.EnvironmentData


def build_failure(exc: BaseException) -> bool:
    """Whether an exception from building an environment means a missing package/registration (skip), rather
    than a bug (propagate)."""
    import gymnasium

    return isinstance(exc, ImportError | gymnasium.error.Error)


#: the figures it logs for the agent (`<prefix>/<figure>`) and the random baseline (`<prefix>/random/<figure>`)
FIGURES = ("return", "return_std", "episode_length", "success_rate", "normalized_score", "normalized_score_std",
           "normalized_score_capped", "normalized_score_capped_std")


class RolloutEvaluation(pl.Callback):
    """Rolls out the phase's policy in the datamodule's environment after the test epoch."""

    #: what it logs, `{prefix}` its setting (`brainlab.validate` checks monitors against these)
    logged_metrics = (*(f"{{prefix}}/{name}" for name in FIGURES), *(f"{{prefix}}/random/{name}" for name in FIGURES))

    def __init__(
        self,
        episodes: int = 10,
        seed: int = 10_000,
        max_steps: int | None = None,
        random_baseline: bool = True,
        output_dir: str | None = None,
        prefix: str = "test",
    ) -> None:
        if episodes < 1:
            raise ConfigError(f"callbacks.rollout_eval.episodes={episodes} must be >= 1")
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"callbacks.rollout_eval.max_steps={max_steps} must be >= 1 (or null: no cap)")
        self.episodes, self.seed, self.max_steps = episodes, seed, max_steps
        self.random_baseline, self.prefix = random_baseline, prefix
        self.output_dir = Path(output_dir) if output_dir else None
        self.report_files = ["rollouts.md"]
        self.skip_reason = ""
        self.notes: list[str] = []
        self.summary: dict[str, float] = {}
        self.episodes_played: dict[str, list[dict[str, Any]]] = {}

    # --- the hooks ------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.check(trainer.datamodule, pl_module)  # a wrong pairing fails before training, not after

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # deterministic seeded episodes: one process plays them
            return
        dm = trainer.datamodule
        self.check(dm, pl_module)
        self.skip_reason, self.notes, self.summary, self.episodes_played = "", [], {}, {}
        env = self.make_env(dm)
        if env is not None:
            try:
                self.play(env, dm, pl_module)
            finally:
                env.close()
            self.summarise(dm)
            for key, value in self.summary.items():
                pl_module.log(key, value, batch_size=1, rank_zero_only=True)
        self.write(trainer, dm)

    def check(self, dm: Any, pl_module: pl.LightningModule) -> None:
        missing = [name for name in DATAMODULE_API if not hasattr(dm, name)]
        if dm is None or missing:
            raise ConfigError(
                f"callbacks.rollout_eval needs an environment datamodule (data=minari); {type(dm).__name__} lacks "
                f"{missing or DATAMODULE_API}: remove the callback (callbacks.rollout_eval=null)"
            )
        if not callable(getattr(pl_module, "act", None)):
            raise ConfigError(
                f"callbacks.rollout_eval needs a phase that acts (model=active_inference); {type(pl_module).__name__} "
                "has no act(obs, generator): remove the callback (callbacks.rollout_eval=null)"
            )

    def make_env(self, dm: Any) -> Any:
        """The evaluation environment, or None with `skip_reason` set when its package is missing."""
        try:
            return dm.make_env()
        except Exception as exc:
            if not build_failure(exc):
                raise
            requirements = list(dm.requirements)
            fix = (f"pip install {' '.join(repr(r) for r in requirements)}" if requirements else
                   "install the package that provides it (MuJoCo tasks such as AntMaze: pip install -e '.[mujoco]')")
            self.skip_reason = (f"rollouts skipped: the environment of {dm.dataset_id} cannot be "
                                f"built ({type(exc).__name__}: {exc}); {fix}")
            log.warning("%s", self.skip_reason)
            print(self.skip_reason)
            return None

    # --- episodes -------------------------------------------------------------------------------------
    def play(self, env: Any, dm: Any, pl_module: pl.LightningModule) -> None:
        seeds = range(self.seed, self.seed + self.episodes)
        device = pl_module.device

        def agent(seed: int) -> Any:
            gen = torch.Generator(device=device).manual_seed(seed)

            def act(obs: Any) -> Any:
                flat = torch.as_tensor(dm.flatten_observation(obs), device=device)
                return dm.action_spec.from_unit(pl_module.act(flat, gen))
            return act

        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            self.episodes_played["agent"] = [self.rollout(env, s, agent(s)) for s in seeds]
            if self.random_baseline:
                self.episodes_played["random"] = [self.rollout(env, s, lambda _obs: env.action_space.sample())
                                                  for s in seeds]
        pl_module.train(was_training)

    def rollout(self, env: Any, seed: int, act: Any) -> dict[str, Any]:
        """One seeded episode: its return, length, whether it reached success (if reported) or was cut."""
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        total, steps, success, capped = 0.0, 0, None, False
        while True:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            total += float(reward)
            steps += 1
            if "success" in info:
                success = bool(success) or bool(info["success"])
            if terminated or truncated:
                break
            if self.max_steps is not None and steps >= self.max_steps:
                capped = True
                break
        return {"seed": seed, "return": total, "length": steps, "success": success, "capped": capped}

    # --- numbers --------------------------------------------------------------------------------------
    def summarise(self, dm: Any) -> None:
        capped = any(e["capped"] for eps in self.episodes_played.values() for e in eps)
        if capped:
            self.notes.append(f"episodes cut at max_steps={self.max_steps} (not the benchmark's protocol): the "
                              "score is logged as normalized_score_capped and does not fill the target row")
        for name, prefix in (("agent", self.prefix), ("random", f"{self.prefix}/random")):
            episodes = self.episodes_played.get(name)
            if not episodes:
                continue
            returns = np.array([e["return"] for e in episodes], np.float64)
            self.summary[f"{prefix}/return"] = float(returns.mean())
            self.summary[f"{prefix}/return_std"] = float(returns.std())
            self.summary[f"{prefix}/episode_length"] = float(np.mean([e["length"] for e in episodes]))
            successes = [e["success"] for e in episodes if e["success"] is not None]
            if successes:
                self.summary[f"{prefix}/success_rate"] = float(np.mean(successes))
            try:
                scores = np.asarray(dm.normalized_score(returns), np.float64)
            except ValueError as exc:  # minari: the dataset has no ref_min_score / ref_max_score
                note = f"no normalised score: {exc} (the dataset's metadata lacks ref_min_score/ref_max_score)"
                if note not in self.notes:
                    self.notes.append(note)
                    log.warning("%s", note)
                continue
            for episode, score in zip(episodes, scores, strict=True):
                episode["normalized_score"] = float(score)
            key = f"{prefix}/normalized_score" + ("_capped" if capped else "")
            self.summary[key] = float(scores.mean())
            self.summary[f"{key}_std"] = float(scores.std())

    def write(self, trainer: pl.Trainer, dm: Any) -> None:
        """rollouts.json (every episode) and rollouts.md (the summary, or why there is none)."""
        out = self.output_dir or Path(trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {"dataset_id": dm.dataset_id, "full_dataset": dm.is_full_dataset,
                  "episodes_requested": self.episodes, "seed": self.seed, "max_steps": self.max_steps,
                  "skip_reason": self.skip_reason, "notes": self.notes, "summary": self.summary,
                  "episodes": self.episodes_played}
        lines = [f"Rollouts in the environment of `{record['dataset_id']}`: {self.episodes} episodes, seeds "
                 f"{self.seed}..{self.seed + self.episodes - 1}" + (f", at most {self.max_steps} steps" if
                                                                    self.max_steps else "") + ".", ""]
        if self.skip_reason:
            lines.append(f"**{self.skip_reason}**")
        if self.summary:
            lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in self.summary.items())]
        lines += [f"- {note}" for note in self.notes]
        for name, text in (("rollouts.json", json.dumps(record, indent=2)), ("rollouts.md", "\n".join(lines) + "\n")):
            tmp = out / f"{name}.tmp"
            tmp.write_text(text)
            tmp.replace(out / name)
