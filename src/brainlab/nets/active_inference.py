"""An active-inference agent: a generative world model and an expected-free-energy planner.

World model (all Gaussian, in a latent space `s`):
  encoder      q(s | o)            amortised posterior
  transition   p(s' | s, a)        residual MLP
  likelihood   p(o | s)            state-dependent mean and std (normalised observations)
  outcomes     p(r, d | s)         reward (Gaussian) and termination (Bernoulli) of arriving in s
  habit        pi(a | s)           behaviour-cloned policy prior (proposals and E(pi) in q(pi))
  preferences  p~(r, d)            prior over outcomes learned from the dataset's rewards (buffers)
Training minimises variational free energy on windows (reconstruction + KL(q(s_t|o_t) || p(s_t|s_t-1,a_t-1)),
plus open-loop "overshooting" terms so multi-step imagination stays calibrated, outcome and habit likelihoods).
Planning scores action sequences by expected free energy G = sum_t risk_t + ambiguity_t, where risk is
KL[q(outcome_t | pi) || p~(outcome)] and ambiguity is the expected entropy of p(o_t | s_t); sequences are
enumerated for small discrete spaces, otherwise searched by the cross-entropy method seeded by the habit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.core.errors import ConfigError

LOG_2PI_E = math.log(2 * math.pi * math.e)


def mlp(n_in: int, hidden: int, n_out: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ELU()]
    mods.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*mods)


def gaussian(out: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw = out.chunk(2, dim=-1)
    return mean, F.softplus(raw) + min_std


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """-log N(x | mean, std), summed over the last axis."""
    return (0.5 * ((x - mean) / std) ** 2 + std.log() + 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_kl(mq: torch.Tensor, sq: torch.Tensor, mp: torch.Tensor, sp: torch.Tensor) -> torch.Tensor:
    """KL[N(mq, sq) || N(mp, sp)], summed over the last axis."""
    return (torch.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5).sum(-1)


def bernoulli_kl(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    p, q = p.clamp(eps, 1 - eps), q.clamp(eps, 1 - eps)
    return p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))


class ActiveInferenceNet(nn.Module):
    """The generative model. Sizes of the data (`obs_dim`, `action_dim`, `discrete`) may be left None and
    filled by `build` once the dataset is known (the phase writes them back into its config)."""

    def __init__(
        self,
        obs_dim: int | None = None,
        action_dim: int | None = None,
        discrete: bool | None = None,
        latent_dim: int = 16,
        hidden_dim: int = 128,
        layers: int = 2,
        min_std: float = 0.05,
    ) -> None:
        super().__init__()
        self.latent_dim, self.hidden_dim, self.layers, self.min_std = latent_dim, hidden_dim, layers, min_std
        self.obs_dim: int | None = None
        self.action_dim: int | None = None
        self.discrete: bool | None = None
        if obs_dim is not None and action_dim is not None and discrete is not None:
            self.build(obs_dim, action_dim, discrete)

    @property
    def built(self) -> bool:
        return self.obs_dim is not None

    def build(self, obs_dim: int, action_dim: int, discrete: bool) -> None:
        self.obs_dim, self.action_dim, self.discrete = int(obs_dim), int(action_dim), bool(discrete)
        s, h, n = self.latent_dim, self.hidden_dim, self.layers
        self.encoder = mlp(obs_dim, h, 2 * s, n)
        self.transition = mlp(s + action_dim, h, 2 * s, n)
        self.likelihood = mlp(s, h, 2 * obs_dim, n)
        self.outcome = mlp(s, h, 3, n)
        self.habit = mlp(s, h, action_dim if discrete else 2 * action_dim, n)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        # preferences over outcomes: reward ~ N(pref_reward, pref_reward_std), termination ~ Bernoulli(pref_done)
        self.register_buffer("pref_reward", torch.tensor(1.0))
        self.register_buffer("pref_reward_std", torch.tensor(1.0))
        self.register_buffer("pref_done", torch.tensor(1e-3))

    # --- learned from the data ---------------------------------------------------------------------
    def set_statistics(self, obs: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
                       reward_quantile: float = 0.9, done_preference: float = 1e-3) -> None:
        """Observation normaliser and preferences from the dataset: preferred reward = an upper quantile of
        the rewards (the maximum where that quantile is the minimum, as with sparse goal rewards: preferring the
        worst outcome is never meant); termination is preferred only when terminal steps pay more than average."""
        self.obs_mean.copy_(obs.mean(0))
        self.obs_std.copy_(obs.std(0).clamp_min(1e-3))
        preferred = torch.quantile(rewards, reward_quantile)
        if preferred <= rewards.min() < rewards.max():
            preferred = rewards.max()
        self.pref_reward.copy_(preferred)
        self.pref_reward_std.copy_(rewards.std().clamp_min(0.1) if len(rewards) > 1 else torch.tensor(1.0))
        good_end = bool(terminated.any()) and rewards[terminated > 0].mean() > rewards.mean()
        self.pref_done.fill_(1 - done_preference if good_end else done_preference)

    # --- pieces of the model -------------------------------------------------------------------------
    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian(self.encoder(self.normalize(obs)), self.min_std)

    def action_input(self, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return F.one_hot(action.long(), self.action_dim).float()
        return action.float()

    def step(self, s: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = gaussian(self.transition(torch.cat([s, self.action_input(action)], -1)), self.min_std)
        return s + mean, std

    def observe(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(o | s) in normalised observation units."""
        return gaussian(self.likelihood(s), self.min_std)

    def outcomes(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reward mean, reward std, termination logit) of arriving in s."""
        out = self.outcome(s)
        return out[..., 0], F.softplus(out[..., 1]) + 1e-2, out[..., 2]

    def habit_log_prob(self, s: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        out = self.habit(s)
        if self.discrete:
            return out.log_softmax(-1).gather(-1, action.long()[..., None])[..., 0]
        mean, std = gaussian(out, self.min_std)
        return -gaussian_nll(action, torch.tanh(mean), std)

    def habit_action(self, s: torch.Tensor) -> torch.Tensor:
        out = self.habit(s)
        return out.argmax(-1) if self.discrete else torch.tanh(out.chunk(2, -1)[0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The habit's action for observations (greedy behaviour-cloned policy)."""
        return self.habit_action(self.encode(obs)[0])

    # --- variational free energy -----------------------------------------------------------------------
    def free_energy(self, batch: dict[str, torch.Tensor], kl_weight: float = 1.0,
                    overshoot_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Per-step averages of the free-energy terms on a batch of windows (masked past episode ends)."""
        obs, action, mask = batch["obs"], batch["action"], batch["mask"]
        n = mask.sum().clamp_min(1)
        mq, sq = self.encode(obs)                                   # (B, L+1, S)
        s = mq + sq * torch.randn_like(sq)
        target = self.normalize(obs)
        mo, so = self.observe(s)
        obs_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        recon = (gaussian_nll(target, mo, so) * obs_mask).sum() / n
        mp, sp = self.step(s[:, :-1], action)                       # prior of s_1..s_L
        kl = (gaussian_kl(mq[:, 1:], sq[:, 1:], mp, sp) * mask).sum() / n
        kl0 = gaussian_kl(mq[:, 0], sq[:, 0], torch.zeros_like(mq[:, 0]), torch.ones_like(sq[:, 0])).mean()
        outcome = self._outcome_nll(s[:, 1:], batch) / n
        # open-loop imagination from s_0 through the transition means (what the planner does)
        imagined, stds, cur = [], [], s[:, 0]
        for t in range(action.shape[1]):
            cur, std = self.step(cur, action[:, t])
            imagined.append(cur)
            stds.append(std)
        im, ims = torch.stack(imagined, 1), torch.stack(stds, 1)
        mo_i, so_i = self.observe(im)
        overshoot = ((gaussian_nll(target[:, 1:], mo_i, so_i) + gaussian_kl(mq[:, 1:], sq[:, 1:], im, ims)) * mask
                     ).sum() / n + self._outcome_nll(im, batch) / n
        habit = -(self.habit_log_prob(mq[:, :-1].detach(), action) * mask).sum() / n
        free_energy = recon + kl + kl0 / obs.shape[1]
        loss = recon + kl_weight * (kl + kl0 / obs.shape[1]) + outcome + overshoot_weight * overshoot + habit
        return {"loss": loss, "free_energy": free_energy, "recon": recon, "kl": kl, "outcome": outcome,
                "overshoot": overshoot, "habit": habit}

    def _outcome_nll(self, s: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        rm, rs, dl = self.outcomes(s)
        nll = gaussian_nll(batch["reward"][..., None], rm[..., None], rs[..., None])
        nll = nll + F.binary_cross_entropy_with_logits(dl, batch["terminated"], reduction="none")
        return (nll * batch["mask"]).sum()

    # --- expected free energy ----------------------------------------------------------------------------
    def efe_step(self, s: torch.Tensor, action: torch.Tensor, alive: torch.Tensor, ambiguity_weight: float = 1.0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step: (next state, G increment, next alive probability, log habit prior of action).

        risk = KL[q(r, d | s') || p~(r, d)], ambiguity = H[p(o | s')]; once the episode has (probably) ended,
        the outcome is termination for sure, which costs -log p~(d = 1) per remaining step."""
        log_habit = self.habit_log_prob(s, action)
        s, _ = self.step(s, action)
        rm, rs, dl = self.outcomes(s)
        p_done = torch.sigmoid(dl)
        n = s.shape[0]
        risk = gaussian_kl(rm[:, None], rs[:, None], self.pref_reward.expand(n, 1),
                           self.pref_reward_std.expand(n, 1)) + bernoulli_kl(p_done, self.pref_done)
        ambiguity = 0.5 * (LOG_2PI_E + 2 * self.observe(s)[1].log()).sum(-1)
        dead = -torch.log(self.pref_done.clamp(1e-6, 1 - 1e-6))
        g = alive * (risk + ambiguity_weight * ambiguity) + (1 - alive) * dead
        return s, g, alive * (1 - p_done), log_habit

    def expected_free_energy(self, s0: torch.Tensor, actions: torch.Tensor, ambiguity_weight: float = 1.0
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, log habit prior) of K action sequences `actions` (K, H[, A]) from latent state s0 (S,)."""
        k = actions.shape[0]
        s = s0.expand(k, -1)
        alive, g, log_habit = (torch.zeros(k, device=s0.device) for _ in range(3))
        alive += 1
        for t in range(actions.shape[1]):
            s, dg, alive, lh = self.efe_step(s, actions[:, t], alive, ambiguity_weight)
            g, log_habit = g + dg, log_habit + lh
        return g, log_habit

    def expected_free_energy_tree(self, s0: torch.Tensor, horizon: int, ambiguity_weight: float = 1.0
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, log habit) of all n^H discrete sequences, in itertools.product order, sharing common prefixes
        (n + n^2 + ... + n^H imagined steps instead of H n^H)."""
        n = self.action_dim
        s, alive = s0[None], torch.ones(1, device=s0.device)
        g, log_habit = torch.zeros(1, device=s0.device), torch.zeros(1, device=s0.device)
        for _ in range(horizon):
            s, alive = s.repeat_interleave(n, 0), alive.repeat_interleave(n)
            g, log_habit = g.repeat_interleave(n), log_habit.repeat_interleave(n)
            action = torch.arange(n, device=s0.device).repeat(len(s) // n)
            s, dg, alive, lh = self.efe_step(s, action, alive, ambiguity_weight)
            g, log_habit = g + dg, log_habit + lh
        return g, log_habit


@dataclass
class EFEPlanner:
    """Picks the first action of the sequence maximising -G + habit_weight * log E(pi) over `horizon` steps."""

    horizon: int = 8
    candidates: int = 256
    iterations: int = 3
    elites: int = 32
    habit_weight: float = 1.0
    ambiguity_weight: float = 1.0
    max_enumerate: int = 4096
    init_std: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.candidates:
            raise ConfigError(f"model.planner.elites={self.elites} must be in [1, model.planner.candidates="
                              f"{self.candidates}]")
        if self.iterations < 1 or self.horizon < 1:
            raise ConfigError(f"model.planner.iterations={self.iterations} and model.planning_horizon="
                              f"{self.horizon} must be >= 1")
        if self.init_std <= 0:
            raise ConfigError(f"model.planner.init_std={self.init_std} must be > 0")

    def score(self, net: ActiveInferenceNet, s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        g, log_habit = net.expected_free_energy(s0, actions, self.ambiguity_weight)
        return -g + self.habit_weight * log_habit

    @torch.no_grad()
    def __call__(self, net: ActiveInferenceNet, obs: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        s0 = net.encode(obs[None])[0][0]
        if net.discrete:
            if net.action_dim**self.horizon <= self.max_enumerate:
                g, log_habit = net.expected_free_energy_tree(s0, self.horizon, self.ambiguity_weight)
                best = int((-g + self.habit_weight * log_habit).argmax())
                return best // net.action_dim ** (self.horizon - 1)  # first action of the best sequence
            return self._cem_discrete(net, s0, generator)
        return self._cem_continuous(net, s0, generator)[0].cpu().numpy()

    def _habit_rollout(self, net: ActiveInferenceNet, s0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The habit's greedy plan (H, A) and its per-step outputs along the imagined states."""
        s, acts, outs = s0[None], [], []
        for _ in range(self.horizon):
            outs.append(net.habit(s)[0])
            a = net.habit_action(s)
            acts.append(a[0])
            s, _ = net.step(s, a)
        return torch.stack(acts), torch.stack(outs)

    def _cem_discrete(self, net: ActiveInferenceNet, s0: torch.Tensor, gen: torch.Generator | None) -> int:
        _, logits = self._habit_rollout(net, s0)
        probs = torch.softmax(logits, -1).clamp_min(0.05)
        probs = probs / probs.sum(-1, keepdim=True)
        for _ in range(self.iterations):
            seqs = torch.multinomial(probs, self.candidates, replacement=True, generator=gen).T   # (K, H)
            elite = seqs[self.score(net, s0, seqs).topk(self.elites).indices]
            counts = F.one_hot(elite, net.action_dim).float().mean(0)
            probs = 0.9 * counts + 0.1 / net.action_dim
        return int(elite[0, 0])

    def _cem_continuous(self, net: ActiveInferenceNet, s0: torch.Tensor, gen: torch.Generator | None
                        ) -> torch.Tensor:
        mean, _ = self._habit_rollout(net, s0)
        std = torch.full_like(mean, self.init_std)
        best, best_score = mean, -torch.inf
        for _ in range(self.iterations):
            noise = torch.randn((self.candidates, *mean.shape), generator=gen, device=mean.device)
            seqs = (mean + std * noise).clamp(-1, 1)
            seqs[0] = mean
            scores = self.score(net, s0, seqs)
            top = scores.topk(self.elites).indices
            if scores[top[0]] > best_score:
                best, best_score = seqs[top[0]], scores[top[0]]
            mean, std = seqs[top].mean(0), seqs[top].std(0).clamp_min(0.05)
        return best
