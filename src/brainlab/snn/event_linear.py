"""Event-driven synapse for spiking inputs: `EventLinear`, an `nn.Linear` whose CPU math skips the zero inputs.

When a layer's input is spikes (binary or small counts, mostly zero), its input current is a gather-sum of the
active inputs' weight columns, `y[r] = b + sum_{i: x[r,i] != 0} x[r,i] * W[:, i]`, and the weight gradient a
scatter over the same active inputs, `dW[:, i] += x[r,i] * g[r]`; only the input gradient `g @ W` stays dense
(and is skipped when the input needs none, as for the first layer). Both sparse passes are compiled numba loops
over rows (`rows_in_parallel`: one slice per torch thread; the weight gradient is summed from one partial per
slice in slice order, so the same thread count gives the same numbers). The forward keeps each row's active
inputs as bit masks (1 bit per input), so the backward visits them without scanning the input again, and sums the
bias gradient in the same pass (float64). The sums run in input order, not in
BLAS's blocked order, so a current may differ from `nn.Linear`'s in its last bits: a spike flips only where the
membrane lies within rounding of the threshold.

`mode`: `dense` (plain `F.linear`), `event`, or `auto`: the first forward pass measures the input's density (the
fraction of non-zero entries; never a timing, so the same seed keeps the same numbers) and keeps `event` when it
is at most `AUTO_MAX_DENSITY`, `dense` otherwise; the choice is logged once. CUDA tensors and dtypes other than
float32 take the dense path. Being an `nn.Linear` subclass, the metric hooks (SynOps, MACs) count it as a Linear.
"""

from __future__ import annotations

import logging
from typing import Any

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from torch import nn

from brainlab.core.checks import check_choice
from brainlab.snn.grads import same_at_every_step
from brainlab.snn.parallel import rows_in_parallel
from brainlab.snn.reuse import Workspace

log = logging.getLogger(__name__)

MODES = ("dense", "event", "auto")
#: `auto` keeps the event path up to this input density (fraction of non-zero inputs). The cost model: the dense
#: forward + weight gradient cost 2 * rows * in * out multiply-adds, the event path one scan of the input per pass
#: plus 2 * nnz * out. Measured on CPU (128 -> 128, 32000 rows, forward + weight and bias gradients, 2 threads, 21
#: interleaved rounds, load < 1, medians): with 512-bit vectors (`brainlab.core.jit`) event vs dense 6.4 vs 13.6 ms
#: at 5 %, 8.4 vs 13.9 at 10 %, 10.6 vs 14.7 at 15 %, 13.0 vs 13.9 at 20 %, 15.5 vs 14.1 at 25 %; with numba's
#: 256-bit default the crossing came earlier (17.5 vs 20.5 at 15 %, 17.7 vs 15.2 at 20 %). 15 % keeps a margin on both.
AUTO_MAX_DENSITY = 0.15


@intrinsic
def _trailing_zeros(typingctx, word):  # noqa: ANN001, ANN202
    """The index of the lowest set bit of a non-zero uint64 (one instruction, `tzcnt`)."""

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64, ir.IntType(1)]),
                                            "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.uint64(types.uint64), codegen


_ONE = np.uint64(1)


@nb.njit(cache=True, inline="always")
def _active_bits(xr: Any, i0: int, n: int) -> Any:  # pragma: no cover - compiled
    """Bit j set where `xr[i0 + j] != 0`, for j < n <= 64: the active inputs of one block, found without a branch
    per input (a branch per input mispredicts at every spike)."""
    word = np.uint64(0)
    for j in range(n):
        word |= np.uint64(xr[i0 + j] != 0) << np.uint64(j)
    return word


@nb.njit(cache=True, nogil=True)
def gather_forward(x: Any, wt: Any, b: Any, has_bias: bool, out: Any, active: Any) -> None:  # pragma: no cover
    """`out[r] = b + sum over non-zero x[r, i] of x[r, i] * wt[i]` (`wt`: the weight transposed, (in, out)), summed
    in input order; the active inputs of each 64-wide block are visited by their set bits, which are kept in
    `active[r, block]` for the backward."""
    rows, ins = x.shape
    outs = wt.shape[1]
    for r in range(rows):
        xr, acc = x[r], out[r]
        for o in range(outs):
            acc[o] = b[o] if has_bias else 0.0
        for blk in range(active.shape[1]):
            i0 = blk * 64
            word = _active_bits(xr, i0, min(64, ins - i0))
            active[r, blk] = word
            while word:
                i = i0 + np.int64(_trailing_zeros(word))
                word &= word - _ONE
                v, w = xr[i], wt[i]
                for o in range(outs):
                    acc[o] += v * w[o]


@nb.njit(cache=True, nogil=True)
def scatter_grads(x: Any, active: Any, g: Any, gwt: Any, has_bias: bool, gb: Any) -> None:  # pragma: no cover
    """`gwt[i] += x[r, i] * g[r]` over the active inputs the forward found (`gwt`: the weight gradient transposed,
    (in, out)); with `has_bias`, `gb += g[r]` in the same pass over `g` (accumulated in float64)."""
    rows = x.shape[0]
    outs = g.shape[1]
    for r in range(rows):
        xr, gr = x[r], g[r]
        if has_bias:
            for o in range(outs):
                gb[o] += gr[o]
        for blk in range(active.shape[1]):
            word = active[r, blk]
            while word:
                i = blk * 64 + np.int64(_trailing_zeros(word))
                word &= word - _ONE
                v, acc = xr[i], gwt[i]
                for o in range(outs):
                    acc[o] += v * gr[o]


def _np(t: torch.Tensor) -> Any:
    return t.detach().numpy()


class EventLinearFn(torch.autograd.Function):
    """`(x (*lead, in), weight (out, in), bias (out) | None) -> (*lead, out)`, float32 CPU tensors.

    The output keeps `x`'s leading shape, so a gradient broadcast over time reaches the backward as it is (a loss on
    the readout summed over time: stride 0 along dim 1 of a `(batch, time, out)` gradient). Then the input
    gradient is one `(batch, in)` product broadcast over time (handed back with stride 0, which the fused neuron's
    backward reads in place), and the weight gradient the product of the gradient with the input summed over time.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                slots: Workspace | None = None) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, x.shape[-1]).contiguous()
        wt = weight.detach().t().contiguous()
        slots = slots or Workspace()
        out = slots["out"].take(shape=(x.shape[0], weight.shape[0]), dtype=x.dtype)
        active = slots["active"].take(shape=(x.shape[0], -(-x.shape[1] // 64)), dtype=torch.int64)  # read as uint64
        b = bias.detach() if bias is not None else torch.zeros(0, dtype=x.dtype)
        x_, wt_, b_, out_ = map(_np, (x, wt, b, out))
        act_ = active.numpy().view(np.uint64)
        has_bias = bias is not None
        rows_in_parallel(len(x_), lambda lo, hi: gather_forward(x_[lo:hi], wt_, b_, has_bias, out_[lo:hi],
                                                                act_[lo:hi]))
        ctx.save_for_backward(x, weight, active)
        ctx.has_bias, ctx.slots, ctx.lead = has_bias, slots, lead
        return out.view(*lead, weight.shape[0])

    @staticmethod
    def backward(ctx: Any, g_out: torch.Tensor) -> Any:
        x, weight, active = ctx.saved_tensors
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        want_b = ctx.has_bias and ctx.needs_input_grad[2]
        if same_at_every_step(g_out) and not torch.is_grad_enabled():
            return (*_broadcast_grads(g_out, x.view(*ctx.lead, -1), weight, want_x, want_w, want_b), None)
        g = g_out.reshape(-1, g_out.shape[-1]).to(x.dtype).contiguous()
        g_x = None
        if want_x:  # the one dense product
            if torch.is_grad_enabled():  # create_graph: a plain product autograd can record
                g_x = g.mm(weight)
            else:
                g_x = torch.mm(g, weight, out=ctx.slots["g_x"].take(x))
            g_x = g_x.view(*ctx.lead, -1)
        if not (want_w or want_b):
            return g_x, None, None, None
        x_, g_, act_ = _np(x), _np(g), active.numpy().view(np.uint64)
        parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def part(lo: int, hi: int) -> None:
            gwt = np.zeros((x_.shape[1], g_.shape[1]), dtype=x_.dtype)
            gb = np.zeros(g_.shape[1], dtype=np.float64)
            scatter_grads(x_[lo:hi], act_[lo:hi], g_[lo:hi], gwt, want_b, gb)
            parts[lo] = (gwt, gb)

        rows_in_parallel(len(x_), part)
        gwt, gb = parts.pop(min(parts))
        for lo in sorted(parts):  # slice order: deterministic for a given thread count
            gwt += parts[lo][0]
            gb += parts[lo][1]
        g_w = torch.from_numpy(gwt).t().contiguous() if want_w else None
        g_b = torch.from_numpy(gb.astype(np.float32)) if want_b else None
        return g_x, g_w, g_b, None


def _broadcast_grads(g_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, want_x: bool, want_w: bool,
                     want_b: bool) -> tuple[torch.Tensor | None, ...]:
    """Gradients for `g_out` (batch, time, out) equal at every step: `g0 = g_out[:, 0]`, input gradient `g0 @ W`
    broadcast over time, weight gradient `g0^T @ sum_t x`, bias gradient `time * sum_b g0`."""
    steps = x.shape[1]
    g0 = g_out[:, 0].to(x.dtype)
    g_x = g0.mm(weight).unsqueeze(1).expand(-1, steps, -1) if want_x else None
    g_w = g0.t().mm(x.sum(1)) if want_w else None
    g_b = g0.sum(0).mul_(steps) if want_b else None
    return g_x, g_w, g_b


def density(x: torch.Tensor) -> float:
    """The fraction of non-zero entries of `x` (what `auto` decides by)."""
    return float(torch.count_nonzero(x)) / max(1, x.numel())


class EventLinear(nn.Linear):
    """`nn.Linear` with the event-driven CPU path (`mode`: dense | event | auto; see the module docstring).

    Same parameters and state dict as `nn.Linear`, so checkpoints load into either.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, mode: str = "event",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.mode = check_choice("backend.synapse", mode, MODES)
        self.chosen: str | None = None if mode == "auto" else mode
        self._slots = Workspace()  # the large outputs' memory, reused between steps

    def extra_repr(self) -> str:
        chosen = f" -> {self.chosen}" if self.mode == "auto" and self.chosen else ""
        return f"{super().extra_repr()}, synapse={self.mode}{chosen}"

    def choose(self, x: torch.Tensor) -> str:
        """`dense` or `event` for this input (auto: fixed by the first input's density, logged once)."""
        if self.chosen is None:
            d = density(x)
            self.chosen = "event" if d <= AUTO_MAX_DENSITY else "dense"
            log.info("EventLinear(%d -> %d): synapse=auto chose %s (input density %.4f, event up to %.2f)",
                     self.in_features, self.out_features, self.chosen, d, AUTO_MAX_DENSITY)
        return self.chosen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.mode == "dense" or x.device.type != "cpu" or x.dtype != torch.float32
                or self.weight.dtype != torch.float32 or torch.is_autocast_enabled("cpu")
                or self.choose(x) == "dense"):
            return F.linear(x, self.weight, self.bias)
        return EventLinearFn.apply(x, self.weight, self.bias, self._slots)


def event_linear(in_features: int, out_features: int, bias: bool = True, synapse: str = "dense") -> nn.Linear:
    """A backend's synapse layer by `backend.synapse`: plain `nn.Linear` for dense, else `EventLinear(mode)`."""
    check_choice("backend.synapse", synapse, MODES)
    if synapse == "dense":
        return nn.Linear(in_features, out_features, bias=bias)
    return EventLinear(in_features, out_features, bias=bias, mode=synapse)
