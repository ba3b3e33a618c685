"""The fused backend's Triton kernels on CPU under Triton's interpreter, against sinabs and the numba path.

Run as a script with `TRITON_INTERPRET=1` set before import (test_fused_triton_interpreter.py does, in a
subprocess); exits 1 naming every case that differs. Tiny shapes keep it fast.

1. Layers (`backend.kernel=triton`, forward + backward through the autograd functions) for every neuron setting
   the fused backend claims (kind x spike_fn x reset x min_v_mem x tau_syn x recurrent, the surrogates in turn,
   learnable time constants), two calls so the carried state is read: spikes and state identical to sinabs and
   to `backend.kernel=numba`; gradients of the input and of every time constant / recurrent weight equal
   within float tolerance.
2. The autograd functions one by one (MembraneFn over its kernel flags, SynapseFn, NeuronFn on flag combinations
   that take every flag both ways), Triton against numba with random initial states: every output identical,
   every input gradient (input, initial states, decays, recurrent weight) within tolerance.

Recurrent layers: the fused kernels sum the recurrent current in neuron order, sinabs's nn.Linear in BLAS's order,
so their membrane potentials may differ in the last bit (spikes stay identical here); v_mem is compared closely.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable

if os.environ.get("TRITON_INTERPRET") != "1":
    sys.exit("run with TRITON_INTERPRET=1 set before import (Triton reads it when the kernels are defined)")

import torch  # noqa: E402

from brainlab.snn import fused, sinabs_backend  # noqa: E402
from brainlab.snn.fused import MembraneFn, SynapseFn, kernel_config  # noqa: E402
from brainlab.snn.fused import ext as fused_ext  # noqa: E402
from brainlab.snn.fused import triton as triton_kernels  # noqa: E402
from brainlab.snn.fused.select import use_triton  # noqa: E402
from brainlab.snn.spec import NeuronSpec  # noqa: E402

SURROGATES = ("single_exponential", "heaviside", "gaussian", "multi_gaussian", "periodic_exponential")
FEATS = 5
FAILURES: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    if not ok:
        FAILURES.append(f"{name}: {detail}")


def close(name: str, what: str, ours: torch.Tensor | None, ref: torch.Tensor | None, rtol: float, atol: float) -> None:
    ours = torch.zeros(()) if ours is None else ours
    ref = torch.zeros_like(ours) if ref is None else ref
    try:
        torch.testing.assert_close(ours, ref.reshape(ours.shape), rtol=rtol, atol=atol)
    except AssertionError as err:
        FAILURES.append(f"{name}: {what} differs: {str(err).splitlines()[1:4]}")


def settings() -> list[dict]:
    out = []
    for kind, spike_fn, reset, min_v, syn, rec in itertools.product(
        ("iaf", "lif", "alif"), ("multi", "single"), ("subtract", "zero"), (None, -0.5), (False, True),
        (False, True),
    ):
        if syn and kind == "alif":
            continue  # refused by every backend (sinabs's ALIF has no synaptic state)
        s = dict(kind=kind, spike_fn=spike_fn, reset=reset, min_v_mem=min_v, recurrent=rec)
        if kind != "iaf":
            s["tau_mem"] = 6.0
        if kind == "alif":
            s.update(tau_adapt=15.0, adapt_scale=1.5)
        if syn:
            s["tau_syn"] = 3.0
        s["surrogate"] = SURROGATES[len(out) % len(SURROGATES)]
        out.append(s)
    return out


def layer_case(setting: dict) -> None:
    name = "layer " + ",".join(f"{k}={v}" for k, v in setting.items() if v is not None)
    params = {"spike_threshold": 0.8, "train_tau": True, **setting}
    if setting["recurrent"]:
        params["features"] = FEATS
    torch.manual_seed(0)
    layers = {"sinabs": sinabs_backend.neuron(**params), "numba": fused.neuron(kernel="numba", **params),
              "triton": fused.neuron(kernel="triton", **params)}
    if setting["recurrent"]:
        with torch.no_grad():
            layers["sinabs"].rec_connect.weight.mul_(1.5)
        for key in ("numba", "triton"):
            layers[key].rec_connect.load_state_dict(layers["sinabs"].rec_connect.state_dict())
    scale = 1.5 if setting["kind"] == "iaf" else 6.0
    gen = torch.Generator().manual_seed(1)
    first = torch.randn(2, 3, FEATS, generator=gen) * scale + 0.3
    second = torch.randn(2, 6, FEATS, generator=gen) * scale + 0.3
    weight = torch.randn(2, 6, FEATS, generator=gen)
    spikes, grads, states = {}, {}, {}
    for key, layer in layers.items():
        with torch.no_grad():
            s1 = layer(first)  # sets a nonzero carried state, read by the second call
        x = second.clone().requires_grad_()
        s2 = layer(x)
        loss = (s2 * weight).sum() + layer.v_mem.square().sum()
        loss.backward()
        spikes[key] = (s1, s2.detach())
        states[key] = layer.v_mem.detach().reshape(2, FEATS)
        grads[key] = {"input": x.grad, **{n: p.grad for n, p in layer.named_parameters() if p.requires_grad}}
    ref = spikes["sinabs"][1]
    check(name, bool(ref.sum() > 0 and (ref == 0).any()), "the input must make some but not all neurons spike")
    for key in ("numba", "triton"):
        for call in (0, 1):
            same = torch.equal(spikes[key][call], spikes["sinabs"][call])
            check(name, same, f"{key} spikes of call {call + 1} differ from sinabs "
                              f"({int((spikes[key][call] != spikes['sinabs'][call]).sum())} entries)")
        if setting["recurrent"]:  # the recurrent current's summation order (see the module docstring)
            close(name, f"{key} v_mem after the calls vs sinabs", states[key], states["sinabs"], 1e-5, 1e-5)
        else:
            check(name, torch.equal(states[key], states["sinabs"]), f"{key} v_mem differs from sinabs")
        for what, g in grads[key].items():
            rtol, atol = (1e-4, 1e-5) if what == "input" else (1e-3, 1e-4)
            close(name, f"{key} gradient of {what} vs sinabs", g, grads["sinabs"].get(what), rtol, atol)
    check(name, torch.equal(states["triton"], states["numba"]), "triton v_mem differs from numba")
    for what, g in grads["triton"].items():
        close(name, f"triton gradient of {what} vs numba", g, grads["numba"][what], 1e-5, 1e-6)


def _run_both(name: str, fn: Callable[[str], tuple], inputs: list[torch.Tensor]) -> None:
    """`fn(kernel)` -> outputs; compare outputs exactly and input gradients (of a random loss) closely."""
    results = {}
    for kernel in ("numba", "triton"):
        leaves = [t.clone().requires_grad_(t.is_floating_point() and t.numel() > 0) for t in inputs]
        outs = fn(kernel, *leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        gen = torch.Generator().manual_seed(7)
        loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)
        loss.backward()
        results[kernel] = ([o.detach() for o in outs], [t.grad for t in leaves])
    for i, (a, b) in enumerate(zip(*(results[k][0] for k in ("triton", "numba")), strict=True)):
        check(name, torch.equal(a, b), f"output {i} differs between triton and numba")
    for i, (a, b) in enumerate(zip(*(results[k][1] for k in ("triton", "numba")), strict=True)):
        if a is not None or b is not None:
            close(name, f"gradient of input {i}", a, b, 1e-5, 1e-6)


def function_cases() -> int:
    n = 0
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(2, 8, FEATS, generator=gen) * 1.2 + 0.3
    v0, i0, b0 = (torch.randn(2, FEATS, generator=gen) * 0.3 for _ in range(3))
    alpha = torch.rand(FEATS, generator=gen) * 0.3 + 0.7
    for spike_fn, reset, min_v in itertools.product(("multi", "single"), ("subtract", "zero"), (None, -0.5)):
        spec = NeuronSpec(spike_threshold=0.8, spike_fn=spike_fn, reset=reset, min_v_mem=min_v)
        for need_alpha in (False, True) if (spike_fn, reset, min_v) == ("multi", "subtract", None) else (True,):
            def membrane(kernel: str, u_: torch.Tensor, v_: torch.Tensor, a_: torch.Tensor, spec=spec) -> tuple:
                return MembraneFn.apply(u_, v_, a_, kernel_config(spec, kernel))

            inputs = [u, v0, alpha if need_alpha else alpha.detach()]
            name = f"MembraneFn spike_fn={spike_fn} reset={reset} min_v={min_v} need_alpha={need_alpha}"
            if not need_alpha:
                _run_both_no_alpha(name, membrane, inputs)
            else:
                _run_both(name, membrane, inputs)
            n += 1
    _run_both("SynapseFn", lambda kernel, x_, i_, a_: SynapseFn.apply(x_, i_, a_, kernel), [u, i0, alpha])
    n += 1
    w = torch.randn(FEATS, FEATS, generator=gen) * 0.5
    flags = [  # spike_fn, reset, min_v_mem, leaky, tau_syn, adaptive, recurrent: every flag both ways
        ("multi", "subtract", None, True, True, False, True),
        ("single", "zero", -0.5, True, False, True, True),
        ("multi", "subtract", -0.5, True, False, True, False),
        ("single", "subtract", None, False, True, False, False),
        ("multi", "zero", None, False, False, False, True),
        ("single", "zero", -0.5, True, True, True, False),  # ALIF with tau_syn: the kernel has it, no backend asks
    ]
    for spike_fn, reset, min_v, leaky, syn, adaptive, recurrent in flags:
        kind = "alif" if adaptive else ("lif" if leaky else "iaf")
        spec = NeuronSpec(kind=kind, spike_threshold=0.8, spike_fn=spike_fn, reset=reset, min_v_mem=min_v,
                          tau_mem=6.0 if leaky else None, tau_syn=3.0 if syn else None,
                          tau_adapt=15.0 if adaptive else None, adapt_scale=1.5, recurrent=recurrent,
                          features=FEATS if recurrent else None)
        am = alpha if leaky else torch.ones(FEATS)
        asyn = alpha * 0.9 if syn else torch.ones(FEATS)
        aa = alpha * 0.95 if adaptive else torch.zeros(FEATS)
        weight = w if recurrent else torch.empty(0, 0)

        def neuron(kernel: str, x_, v_, i_, b_, am_, as_, aa_, w_, spec=spec) -> tuple:  # noqa: ANN001
            return fused_ext.NeuronFn.apply(x_, v_, i_, b_, am_, as_, aa_, w_, fused.ext_config(spec, kernel))

        scale = 6.0 if leaky else 1.0
        name = (f"NeuronFn kind={kind} spike_fn={spike_fn} reset={reset} min_v={min_v} tau_syn={syn} "
                f"recurrent={recurrent}")
        _run_both(name, neuron, [u * scale, v0, i0 if syn else torch.zeros_like(i0),
                                 b0.abs() if adaptive else torch.zeros_like(b0), am, asyn, aa, weight])
        n += 1
    return n


def _run_both_no_alpha(name: str, fn: Callable[..., tuple], inputs: list[torch.Tensor]) -> None:
    """As `_run_both`, with the decay a constant (the kernels skip its gradient: NEED_ALPHA=False)."""
    results = {}
    for kernel in ("numba", "triton"):
        u_, v_ = (t.clone().requires_grad_() for t in inputs[:2])
        outs = fn(kernel, u_, v_, inputs[2])
        gen = torch.Generator().manual_seed(7)
        sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs).backward()
        results[kernel] = ([o.detach() for o in outs], [u_.grad, v_.grad])
    for i, (a, b) in enumerate(zip(results["triton"][0], results["numba"][0], strict=True)):
        check(name, torch.equal(a, b), f"output {i} differs between triton and numba")
    for i, (a, b) in enumerate(zip(results["triton"][1], results["numba"][1], strict=True)):
        close(name, f"gradient of input {i}", a, b, 1e-5, 1e-6)


def main() -> int:
    t0 = time.perf_counter()
    check("interpreter", triton_kernels.INTERPRETED, "the Triton kernels were not defined under the interpreter")
    check("kernel=triton", use_triton(torch.zeros(1), "triton"), "CPU tensors must run Triton under the interpreter")
    cases = settings()
    for setting in cases:
        layer_case(setting)
    n_fn = function_cases()
    took = time.perf_counter() - t0
    if FAILURES:
        print(f"{len(FAILURES)} mismatches (Triton interpreter vs sinabs / numba):", *FAILURES, sep="\n  ")
        return 1
    print(f"ok: {len(cases)} layer settings and {n_fn} autograd-function cases, Triton == sinabs == numba "
          f"({took:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
