"""Causal leaky filters over time, `V_t = beta^(t+1) v0 + sum_{k<=t} beta^(t-k) I_k`, and their adjoint.

The membrane of a neuron without reset (the FastSNN single-spike layer, a non-spiking leaky readout) is this
filter of its input current: a cumulative sum for IAF (`beta == 1`), lower-triangular matmuls for LIF.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def filter_kernel(steps: int, beta: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The `(T, T)` lower-triangular matrix `K[t, k] = beta^(t-k)` for `k <= t` (cached per shape)."""
    t = torch.arange(steps, device=device, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    kernel = torch.where(lag >= 0, beta ** lag.clamp(min=0), torch.zeros((), dtype=torch.float64, device=device))
    return kernel.to(dtype)


def decay_powers(steps: int, beta: float, like: torch.Tensor) -> torch.Tensor:
    """`beta^(t+1)` for t < steps, shaped `(1, T, 1)` to scale the carried-in membrane."""
    t = torch.arange(1, steps + 1, device=like.device, dtype=torch.float64)
    return (beta**t).to(like.dtype)[None, :, None]


#: time steps per block of the blocked filter: one (L, L) matmul per block plus an O(T / L) carry between
#: blocks, O(T L) work instead of the dense O(T^2) product (same values); dense when T <= 2 L
BLOCK = 64


def causal_filter(current: torch.Tensor, beta: float, v0: torch.Tensor | None = None, block: int = BLOCK,
                  ) -> torch.Tensor:
    """`V_t = beta^(t+1) v0 + sum_{k<=t} beta^(t-k) I_k` for `current` `(batch, time, features)`.

    LIF: the paper's lower-triangular kernel as matmuls (dense for short T, blocked for long T); IAF: a
    cumsum. `v0=None` (a fresh membrane) skips the carry term.
    """
    batch, steps, feats = current.shape
    if beta == 1.0:
        v = torch.cumsum(current, dim=1)
        return v if v0 is None else v + v0.unsqueeze(1)
    if steps <= 2 * block:
        v = torch.matmul(filter_kernel(steps, beta, current.device, current.dtype), current)
        return v if v0 is None else v.add_(decay_powers(steps, beta, current) * v0.unsqueeze(1))
    n_blocks = -(-steps // block)
    padded = torch.nn.functional.pad(current, (0, 0, 0, n_blocks * block - steps))
    local = torch.matmul(filter_kernel(block, beta, current.device, current.dtype),
                         padded.view(batch, n_blocks, block, feats))
    # membrane carried into block j: sum_{m<j} beta^(L (j-1-m)) end_m (+ beta^(L j) v0)
    ends = local[:, :, -1]
    carry = torch.matmul(block_carry(n_blocks, beta**block, current.device, current.dtype, causal=True), ends)
    if v0 is not None:
        carry = carry + (beta ** (block * torch.arange(n_blocks, device=current.device, dtype=torch.float64))
                         ).to(current.dtype)[None, :, None] * v0.unsqueeze(1)
    local.addcmul_(decay_powers(block, beta, current).unsqueeze(1), carry.unsqueeze(2))
    return local.view(batch, n_blocks * block, feats)[:, :steps]


@functools.lru_cache(maxsize=32)
def block_carry(n_blocks: int, decay: float, device: torch.device, dtype: torch.dtype, causal: bool,
                ) -> torch.Tensor:
    """`(nb, nb)`: `decay^(j-1-m)` for `m < j` (causal) or `decay^(m-1-j)` for `m > j` (its transpose)."""
    j = torch.arange(n_blocks, device=device, dtype=torch.float64)
    lag = j[:, None] - j[None, :] - 1
    matrix = torch.where(lag >= 0, decay ** lag.clamp(min=0), torch.zeros((), dtype=torch.float64, device=device))
    return (matrix if causal else matrix.T).to(dtype)


def causal_filter_transposed(grad: torch.Tensor, beta: float, block: int = BLOCK) -> torch.Tensor:
    """The adjoint of `causal_filter` in the current: `G_k = sum_{t>=k} beta^(t-k) grad_t`."""
    batch, steps, feats = grad.shape
    if beta == 1.0:
        return torch.flip(torch.cumsum(torch.flip(grad, (1,)), dim=1), (1,))
    if steps <= 2 * block:
        return torch.matmul(filter_kernel(steps, beta, grad.device, grad.dtype).T, grad)
    n_blocks = -(-steps // block)
    padded = torch.nn.functional.pad(grad, (0, 0, 0, n_blocks * block - steps))
    local = torch.matmul(filter_kernel(block, beta, grad.device, grad.dtype).T,
                         padded.view(batch, n_blocks, block, feats))
    # gradient flowing back into block j from later blocks: sum_{m>j} beta^(L (m-1-j)) start_m
    starts = local[:, :, 0]
    carry = torch.matmul(block_carry(n_blocks, beta**block, grad.device, grad.dtype, causal=False), starts)
    rev = torch.flip(decay_powers(block, beta, grad), (1,))  # beta^(L - i) for i < L
    local.addcmul_(rev.unsqueeze(1), carry.unsqueeze(2))
    return local.view(batch, n_blocks * block, feats)[:, :steps]
