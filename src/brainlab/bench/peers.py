"""The SNN libraries people train with, as rows of the backends bench (`python -m brainlab.bench backends peers=true`).

snntorch 1.0 (`Leaky`), norse 1.1.0 (`IAFCell` / `LIFBoxCell`, plain and each cell under `torch.compile`) and
spikingjelly 2.0.0 (multi-step `IFNode` / `LIFNode`), each wrapped as one layer `(batch, T, n) -> (batch, T, n)`
spikes that the bench puts where brainlab's spiking layers go: the same nets, the same Linear layers and the same
weights as every other row. Each library runs as its users run it: snntorch and norse one step at a time in a Python
loop over T (norse's cell compiled whole in `norse+compile`), spikingjelly over the whole sequence in one call
(`step_mode="m"`, its registered CPU / CUDA kernels). Each keeps its own default surrogate gradient, so only the
forward spikes are compared.

How each neuron relates to sinabs's (read from the installed sources; `dt` = 1, `alpha = exp(-1 / tau_mem)` computed
in float32 as sinabs does). sinabs, single spike: IAF `v += x`, LIF `v = alpha*v + (1 - alpha)*x` (`norm_input`);
then `s = v - th >= 0` and `v -= s*th` (reset=subtract) or `v *= s == 0` (reset=zero).

- snntorch `Leaky` (`_neurons/leaky.py`): `mem = beta*mem + x`, spike `mem - th > 0` (its ATan surrogate's forward,
  a strict test). IAF: `beta = 1` and its default `reset_delay=True`, which subtracts the reset at the next step,
  `(v + x) - th` for sinabs's `(v - th) + x`: the same equations, another rounding. LIF: `beta = alpha`, the input
  scaled by `1 - alpha` in the wrapper (sinabs's products and sum, bit for bit); with reset=subtract it runs with
  `reset_delay=False`, so the reset is applied in the step that spikes and decays with the membrane as sinabs's
  does (the default would subtract it undecayed). reset=zero: `(1 - reset)*mem` at the next step, the same values.
- norse (`functional/iaf.py`, `functional/lif_box.py`): `IAFCell`, `v += x`, spike `v - th > 0` (`heaviside` is
  strict), reset to `v_reset` = 0 only; `LIFBoxCell` (LIF without a synaptic current) with `tau_mem_inv = 1 - alpha`:
  `v + (1 - alpha)*(x - v)`, the same equation as sinabs's in another rounding, `reset_subtract` or `reset_value`.
- spikingjelly (`_ops/if_/cpu.py`, `_ops/lif/cpu.py`): `IFNode`, `h = v + x; s = h >= th; v = h - s*th`
  (`v_reset=None`) or `s*0 + (1 - s)*h` (`v_reset=0.0`): sinabs's arithmetic; `LIFNode(tau = 1/(1 - alpha),
  decay_input=True)`: `h = v + (x - v)/tau`, the same equation in another rounding.

So the spikes are compared with sinabs's (`spikes_equal` true / false, with the count of differing entries) where
the equations are the same, and `n/a` (with why) where they are not: sinabs's default `spike_fn=multi` emits
several spikes a step where the membrane passes a multiple of the threshold, every peer one (the bench's
`+neuron.spike_fn=single` compares them); norse's IAF cannot subtract. Where the equations match but the arithmetic
differs (another order of the same sum, a division for a product, a strict `>` for `>=`), a spike may still flip
where a membrane lies within rounding of the threshold: the note says so and the check counts it. snntorch with
`reset_delay=False` (LIF, reset=subtract) also guards against a double reset, which withholds a spike that sinabs
emits where a membrane passes twice the threshold. ALIF, `tau_syn` and recurrent layers have no peer row, and
`min_v_mem` is not compared: the peers' plain IAF / LIF carry none of them.

A peer whose package is missing is a row that reads `not installed` with the pip line, never an error; a peer that
fails to build or to take a training step is a `failed` row with the error's first line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from brainlab.snn.spec import NeuronSpec, parse_neuron

#: the peers' pins (snntorch and loguru: pyproject's `bench` extra); norse and spikingjelly declare torchvision /
#: torchaudio, which would replace the installed torch, so they go in with --no-deps (docs/backends.md)
PINS = {"snntorch": "snntorch==1.0.0", "norse": "norse==1.1.0", "spikingjelly": "spikingjelly==2.0.0",
        "loguru": "loguru"}
NAMES = ("snntorch", "norse", "norse+compile", "spikingjelly")


def install_line(package: str) -> str:
    extra = [PINS["loguru"]] if package == "spikingjelly" else []  # spikingjelly imports loguru
    return f"pip install --no-deps {' '.join([PINS[package], *extra])}"


@dataclass(frozen=True)
class Match:
    """Whether a peer's spikes are compared with sinabs's, and the note that says how its neuron relates to it."""

    compare: bool
    note: str


@dataclass(frozen=True)
class PeerRow:
    """One peer as the bench needs it: a layer builder (None: no row to time), or the status and why."""

    name: str
    layer: Callable[[], nn.Module] | None
    match: Match
    status: str = "ok"
    why: str = ""
    install: str = ""


def alpha_of(spec: NeuronSpec) -> torch.Tensor:
    """sinabs's membrane decay `exp(-1 / tau_mem)` in float32, as its LIF computes it (IAF: 1)."""
    if not spec.leaky:
        return torch.tensor(1.0)
    return torch.exp(-1.0 / torch.tensor(float(spec.tau_mem)))


def time_first(x: torch.Tensor) -> torch.Tensor:
    """`(batch, T, ...)` as one contiguous `(T, batch, ...)` copy: the peers' loops step over time-first data (each
    step a contiguous slice, as in their tutorials), not over strided slices of batch-first data."""
    return x.transpose(0, 1).contiguous()


class SnntorchLayer(nn.Module):
    """snntorch `Leaky` stepped over T (its users' loop); LIF input scaled by `1 - alpha` as sinabs's `norm_input`."""

    def __init__(self, spec: NeuronSpec) -> None:
        import snntorch

        super().__init__()
        alpha = alpha_of(spec)
        delay = not (spec.leaky and spec.reset == "subtract")  # module docstring: where the reset decays
        self.cell = snntorch.Leaky(beta=alpha, threshold=float(spec.spike_threshold), reset_mechanism=spec.reset,
                                   reset_delay=delay)
        self.register_buffer("scale", (1 - alpha) if spec.leaky else torch.tensor(1.0), persistent=False)
        self.leaky = spec.leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.leaky:
            x = self.scale * x
        steps = time_first(x)
        mem = torch.zeros_like(steps[0])
        spikes = []
        for x_t in steps:
            spk, mem = self.cell(x_t, mem)
            spikes.append(spk)
        return torch.stack(spikes, 0).transpose(0, 1)


class NorseLayer(nn.Module):
    """norse `IAFCell` (IAF) or `LIFBoxCell` (LIF, no synaptic current) stepped over T; `compile`: the cell under
    `torch.compile` (its users' way to speed it up), the loop over T in Python."""

    def __init__(self, spec: NeuronSpec, compile: bool = False) -> None:
        import norse.torch as norse
        from norse.torch.functional.reset import reset_subtract, reset_value

        super().__init__()
        th = torch.tensor(float(spec.spike_threshold))
        if spec.leaky:
            p = norse.LIFBoxParameters(tau_mem_inv=1 - alpha_of(spec), v_leak=torch.tensor(0.0), v_th=th,
                                       v_reset=torch.tensor(0.0),
                                       reset_method=reset_subtract if spec.reset == "subtract" else reset_value)
            self.cell = norse.LIFBoxCell(p, dt=1.0)
        else:
            self.cell = norse.IAFCell(norse.IAFParameters(v_th=th, v_reset=torch.tensor(0.0)))
        self.step = torch.compile(self.cell, dynamic=False) if compile else self.cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state, spikes = None, []
        for x_t in time_first(x):
            z, state = self.step(x_t, state)
            spikes.append(z)
        return torch.stack(spikes, 0).transpose(0, 1)


class SpikingJellyLayer(nn.Module):
    """spikingjelly multi-step `IFNode` / `LIFNode` over the whole sequence (time first, as it takes it)."""

    def __init__(self, spec: NeuronSpec) -> None:
        from spikingjelly.activation_based import neuron

        super().__init__()
        reset = None if spec.reset == "subtract" else 0.0
        th = float(spec.spike_threshold)
        if spec.leaky:
            tau = float(1 / (1 - alpha_of(spec)))
            self.node = neuron.LIFNode(tau=tau, decay_input=True, v_threshold=th, v_reset=reset, step_mode="m")
        else:
            self.node = neuron.IFNode(v_threshold=th, v_reset=reset, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.node.reset()
        return self.node(x.transpose(0, 1)).transpose(0, 1)


def match(name: str, spec: NeuronSpec) -> Match:
    """How peer `name`'s neuron relates to sinabs's for `spec` (module docstring's table)."""
    if spec.spike_fn == "multi":
        return Match(False, "sinabs's spike_fn=multi emits several spikes a step, this peer one "
                            "(neuron.spike_fn=single compares the spikes)")
    if spec.min_v_mem is not None:
        return Match(False, "min_v_mem (a floor on the membrane) has no equivalent here")
    strict = "threshold test v > th where sinabs's is >="
    if name == "spikingjelly":
        if spec.leaky:
            return Match(True, "same equations, other rounding (v + (x - v) / tau for alpha v + (1 - alpha) x)")
        return Match(True, "same equations and arithmetic")
    if name == "snntorch":
        if not spec.leaky and spec.reset == "subtract":
            return Match(True, f"same equations, other rounding (the reset subtracted at the next step: (v + x) - th "
                               f"for (v - th) + x); {strict}")
        if spec.leaky and spec.reset == "subtract":
            return Match(True, f"same equations and arithmetic (reset_delay=False) while no membrane passes twice the "
                               f"threshold (snntorch's double-reset guard then withholds a spike); {strict}")
        return Match(True, f"same equations and arithmetic; {strict}")
    # norse, plain or compiled
    if not spec.leaky:
        if spec.reset == "subtract":
            return Match(False, "norse's IAFCell resets to zero, sinabs subtracts (neuron.reset=zero compares)")
        return Match(True, f"same equations and arithmetic; {strict}")
    return Match(True, f"same equations, other rounding (v + (1 - alpha)(x - v) for alpha v + (1 - alpha) x); {strict}")


def unsupported(spec: NeuronSpec) -> str | None:
    """Why the peers have no row for `spec` (their plain IAF / LIF), or None."""
    if spec.kind not in ("iaf", "lif"):
        return f"kind={spec.kind}: the peers' rows are plain IAF / LIF"
    if spec.recurrent:
        return "recurrent=true: the peers' rows are feed-forward"
    if spec.tau_syn is not None:
        return "tau_syn: the peers' rows have no synaptic filter"
    return None


BUILDERS: dict[str, tuple[str, str, Callable[[NeuronSpec], nn.Module]]] = {
    # row name: (package, module imported to check it, layer builder)
    "snntorch": ("snntorch", "snntorch", SnntorchLayer),
    "norse": ("norse", "norse.torch", NorseLayer),
    "norse+compile": ("norse", "norse.torch", lambda spec: NorseLayer(spec, compile=True)),
    "spikingjelly": ("spikingjelly", "spikingjelly.activation_based.neuron", SpikingJellyLayer),
}


def import_error(module: str) -> str | None:
    """The import error of `module` (its first line), or None when it imports."""
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - a broken install (e.g. a missing dependency) reads as not installed
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def rows(names: list[str], neuron: dict[str, Any]) -> list[PeerRow]:
    """The peers' rows for the bench's neuron knobs: a layer builder each, or why there is none."""
    spec = parse_neuron("sinabs", dict(neuron))
    out = []
    for name in names:
        package, module, make = BUILDERS[name]
        no_row = unsupported(spec)
        if no_row:
            out.append(PeerRow(name, None, Match(False, no_row), "skipped", no_row))
            continue
        missing = import_error(module)
        if missing:
            out.append(PeerRow(name, None, Match(False, "not installed"), "not installed", missing,
                               install_line(package)))
            continue
        out.append(PeerRow(name, lambda make=make: make(spec), match(name, spec)))
    return out
