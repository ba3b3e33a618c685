"""One training step of the blog model against the dense floor: `floor` (ReLU in place of the neurons), fused with
`backend.synapse=dense` and fused with `synapse=event` and `synapse=auto` (issue 27). A measurement, not a test.

    python -m brainlab.bench event_step                    # T=250, batch 128, 7 rounds, 2 threads
    python -m brainlab.bench event_step rounds=5 steps=50

Arguments are Hydra overrides of `conf/bench/event_step.yaml`. A step is zero_grad, reset, forward, loss
(cross-entropy of the summed readout), backward and Adam. The variants are timed in interleaved rounds (every
variant one step a round, the order rotating, after one warm-up step each; `brainlab.bench.timing`); prints the
median and min per variant, x floor of each (`noisy` in its place when the figures cannot carry it), the machine's
load before and after and each layer's input density, and writes `event_step.json` into `out`.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainlab.bench.cli import bench_config
from brainlab.bench.timing import claim, interleaved
from brainlab.core.checks import positive_int
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
    """`python -m brainlab.bench event_step [key=value ...]`; `--help` prints the config and its keys."""
    cfg = bench_config("event_step", __doc__, sys.argv[1:] if argv is None else argv)
    if cfg is None:
        return {}
    steps, batch = positive_int("steps", cfg.steps), positive_int("batch", cfg.batch)
    torch.set_num_threads(positive_int("threads", cfg.threads))
    torch.manual_seed(1)
    x = (torch.rand(batch, steps, WIDTH) < 0.2).float() * 2.0
    y = torch.randint(0, CLASSES, (batch,))
    built = nets()
    opts = {name: torch.optim.Adam(net.parameters(), lr=1e-3) for name, net in built.items()}
    densities = input_densities(built["fused-event"], x)
    print("input density per Linear (fused-event):", [round(d, 4) for d in densities])
    rounds = interleaved({name: functools.partial(step, net, opts[name], x, y) for name, net in built.items()},
                         rounds=positive_int("rounds", cfg.rounds), warmup=1)
    floor = rounds.summary("floor")
    result: dict[str, Any] = {}
    for name in built:
        s = rounds.summary(name)
        noisy = s["noisy"] or floor["noisy"]
        result[name] = {"median_s": s["median_s"], "min_s": s["min_s"], "spread": s["spread"], "noisy": s["noisy"],
                        "noisy_why": s["why"], "x_floor": s["median_s"] / floor["median_s"],
                        "x_floor_min": s["min_s"] / floor["min_s"], "ratios_noisy": noisy,
                        "steps_s": rounds.samples[name]["seconds"]}
        ratio, ratio_min = claim(result[name]["x_floor"], noisy), claim(result[name]["x_floor_min"], noisy)
        print(f"{name:12s} median {s['median_s'] * 1e3:8.1f} ms  min {s['min_s'] * 1e3:8.1f} ms  "
              f"x floor {ratio:>5} (min/min {ratio_min:>5})")
    print(rounds.load.describe())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"setup": {"steps": steps, "batch": batch, "threads": torch.get_num_threads(), "torch": torch.__version__},
              "input_density": densities, **rounds.fields(), "variants": result, "out": str(out)}
    (out / "event_step.json").write_text(json.dumps(record, indent=2))
    print(f"wrote {out / 'event_step.json'}")
    return record


if __name__ == "__main__":
    main()
