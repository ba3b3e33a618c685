"""Decision heads: phase 5's active-inference generative model in the workspace's latent space, plus the output
head. Built from `nets.active_inference` (its `mlp`, Gaussian heads, NLL and KL).

  encoder     q(s | c)       amortised posterior over a latent state, from the context c
  likelihood  p(c | s)       Gaussian over the (layer-normed, detached) context
  habit       pi(a | s)      a policy prior over `n_actions`
  transition  p(s' | s, a)   one imagined step under the habit's expected action
  output      logits         read from [c, s, s']
`free_energy` = -log p(c | s) + KL[q(s | c) || N(0, I)] per sample (the variational free energy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brainlab.core.checks import positive_int
from brainlab.nets.active_inference import gaussian, gaussian_kl, gaussian_nll, mlp


class DecisionHeads(nn.Module):
    """`context (B, dim) -> (logits (B, num_classes), free_energy (B,), policy (B, n_actions))`."""

    def __init__(self, dim: int, num_classes: int, latent_dim: int = 1024, hidden_dim: int = 7680,
                 layers: int = 2, n_actions: int = 16, min_std: float = 0.05) -> None:
        super().__init__()
        positive_int("model.net.num_classes", num_classes)
        self.min_std = min_std
        self.encoder = mlp(dim, hidden_dim, 2 * latent_dim, layers)
        self.likelihood = mlp(latent_dim, hidden_dim, 2 * dim, layers)
        self.habit = mlp(latent_dim, hidden_dim, positive_int("model.net.decision.n_actions", n_actions), layers)
        self.transition = mlp(latent_dim + n_actions, hidden_dim, 2 * latent_dim, layers)
        self.output = mlp(dim + 2 * latent_dim, hidden_dim, num_classes, layers)

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, std = gaussian(self.encoder(context), self.min_std)
        s = mean + std * torch.randn_like(std) if self.training else mean
        target = F.layer_norm(context.detach().float(), context.shape[-1:])
        like_mean, like_std = gaussian(self.likelihood(s), self.min_std)
        kl = gaussian_kl(mean.float(), std.float(), torch.zeros_like(mean.float()), torch.ones_like(std.float()))
        free_energy = gaussian_nll(target, like_mean.float(), like_std.float()) / context.shape[-1] + kl / s.shape[-1]
        policy = self.habit(s).softmax(-1)
        next_mean, _ = gaussian(self.transition(torch.cat([s, policy], -1)), self.min_std)
        logits = self.output(torch.cat([context, s, next_mean], -1))
        return logits, free_energy, policy
