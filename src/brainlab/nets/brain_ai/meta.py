"""Meta-learning: neuromodulation + a MAML fast-weight adapter (phase 7's method, Finn et al. 2017).

The neuromodulator reads the workspace's state and emits FiLM gains and biases (`1 + g`, `b`, zero at
initialisation) for `sites` places in the model (the reasoning output, the decision context). The adapter is a
residual bottleneck MLP whose weights are the "fast" weights: `inner_loop` adapts a copy of them on a support
loss with `torch.func.functional_call` (second order unless `first_order`), and `forward(..., params=...)`
runs with the adapted copy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from brainlab.core.checks import positive_int


class ZeroLinear(nn.Linear):
    """A linear layer that starts (and re-initialises) at zero: the modulation starts as the identity."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class MetaLearner(nn.Module):
    def __init__(self, dim: int, sites: int = 2, hidden_dim: int = 4096, adapter_dim: int = 2048) -> None:
        super().__init__()
        self.sites, self.dim = positive_int("model.net.meta.sites", sites), dim
        self.modulator = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden_dim), nn.GELU(),
                                       ZeroLinear(hidden_dim, 2 * sites * dim))
        self.adapter = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, adapter_dim), nn.GELU(),
                                     ZeroLinear(adapter_dim, dim))

    def modulation(self, state: torch.Tensor) -> torch.Tensor:
        """`state (B, dim) -> (B, sites, 2, dim)`: FiLM (gain - 1, bias) per site."""
        return self.modulator(state).view(-1, self.sites, 2, self.dim)

    @staticmethod
    def modulate(x: torch.Tensor, film: torch.Tensor, site: int) -> torch.Tensor:
        gain, bias = film[:, site, 0], film[:, site, 1]
        if x.dim() == 3:
            gain, bias = gain.unsqueeze(1), bias.unsqueeze(1)
        return x * (1 + gain) + bias

    def forward(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The adapter (residual), with its own or adapted fast weights."""
        if params is None:
            return x + self.adapter(x)
        return x + functional_call(self.adapter, params, (x,))

    def inner_loop(self, loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], steps: int = 1,
                   lr: float = 0.01, first_order: bool = False) -> dict[str, torch.Tensor]:
        """MAML's inner loop: `steps` SGD steps on `loss_fn(params)` from the adapter's weights."""
        params = dict(self.adapter.named_parameters())
        for _ in range(steps):
            grads = torch.autograd.grad(loss_fn(params), list(params.values()), create_graph=not first_order)
            params = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
        return params
