"""One training step of the blog model against the dense floor: `floor` (ReLU in place of the neurons), fused with
`backend.synapse=dense` and fused with `synapse=event` and `synapse=auto` (issue 27). A measurement, not a test.

    python -m brainlab.bench.event_step                    # T=250, batch 128, 7 rounds, 2 threads
    python -m brainlab.bench.event_step --rounds 3 --steps 50

A step is zero_grad, reset, forward, loss (cross-entropy of the summed readout), backward and Adam. The variants
are timed in interleaved rounds (one step each per round, after one warm-up step) so a busy machine slows all
alike; prints the median and min per variant, x floor of each, the load average and each layer's input density.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from typing import Any

import torch
from torch import nn

from brainlab.nets.snn import spiking_mlp
from brainlab.snn import fused
from brainlab.snn.event_linear import density
from brainlab.snn.factory import reset_states

WIDTH, HIDDEN, N_HIDDEN, CLASSES = 100, 128, 3, 35


def nets() -> dict[str, nn.Module]:
    """floor / fused-dense / fused-event / fused-auto with the same initial weights."""
    built: dict[str, nn.Module] = {}
    for name, make in {
        "floor": lambda **_: nn.ReLU(),
        "fused-dense": functools.partial(fused.neuron, synapse="dense"),
        "fused-event": functools.partial(fused.neuron, synapse="event"),
        "fused-auto": functools.partial(fused.neuron, synapse="auto"),
    }.items():
        torch.manual_seed(0)
        built[name] = nn.Sequential(*spiking_mlp(WIDTH, HIDDEN, N_HIDDEN, CLASSES, make, {"kind": "iaf"}))
    return built


def step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    reset_states(net.modules())
    loss = nn.functional.cross_entropy(net(x).sum(1), y)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def input_densities(net: nn.Module, x: torch.Tensor) -> list[float]:
    seen: list[float] = []
    hooks = [m.register_forward_pre_hook(lambda _m, a: seen.append(density(a[0]))) for m in net
             if isinstance(m, nn.Linear)]
    reset_states(net.modules())
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return seen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}")
    torch.manual_seed(1)
    x = (torch.rand(args.batch, args.steps, WIDTH) < 0.2).float() * 2.0
    y = torch.randint(0, CLASSES, (args.batch,))
    built = nets()
    opts = {name: torch.optim.Adam(net.parameters(), lr=1e-3) for name, net in built.items()}
    print("input density per Linear (fused-event):", [round(d, 4) for d in input_densities(built["fused-event"], x)])
    for name, net in built.items():
        step(net, opts[name], x, y)  # warm-up: kernel compile / cache load, allocator
    times: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.rounds):
        for name, net in built.items():
            times[name].append(step(net, opts[name], x, y))
    floor = statistics.median(times["floor"])
    result = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {"median_s": med, "min_s": min(ts), "x_floor": med / floor,
                        "x_floor_min": min(ts) / min(times["floor"])}
        print(f"{name:12s} median {med * 1e3:8.1f} ms  min {min(ts) * 1e3:8.1f} ms  x floor {med / floor:5.2f} "
              f"(min/min {min(ts) / min(times['floor']):5.2f})")
    print(f"load average after: {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
