"""The backend speed grid: forward and forward+backward time per spiking backend, and speed-up over sinabs.

    python -m brainlab.bench backends                                  # conf/bench/backends.yaml as is
    python -m brainlab.bench backends device=cuda                      # adds exodus where it is installed
    python -m brainlab.bench backends grid=false repeats=5             # only the blog model
    python -m brainlab.bench backends sizes=[32] steps=[16] batch=8 repeats=1 blog=false   # smoke size
    python -m brainlab.bench backends neuron.kind=lif +neuron.tau_mem=10.0   # another neuron

Arguments are Hydra overrides of `conf/bench/backends.yaml` (composed with Hydra's compose API).

Each grid point is one `Linear(width, width) -> spiking layer` block on random input `(batch, T, width)`;
the blog model is `100 -> 128 -> 128 -> 128 -> 35` with three spiking layers, T=250, batch 128. Backends:
`floor` (ReLU in place of every spiking layer: the dense math alone) and every backend of `conf/backend/` that
runs on the device (`brainlab.snn.plug.discover`; `exodus` needs CUDA and sinabs-exodus, `fastsnn` times its own
LIF, as their plugs say). Backends are timed in turns (round-robin) so a busy machine slows all alike; each
number is the median over `repeats`. Prints a table, writes `backends.json`, `backends_heatmap.png` and
`backends_lines.png` into a new run folder under `out`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from brainlab.bench.cli import bench_config
from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config
from brainlab.metrics.neuromorphic import count_costs
from brainlab.snn.factory import reset_states
from brainlab.snn.plug import discover, factory

NEURON = {"kind": "iaf", "spike_threshold": 1.0}
FLOOR, REFERENCE = "floor", "sinabs"  # speed-ups are over REFERENCE, the x floor ratio over FLOOR


def known_backends() -> list[str]:
    """`floor`, then the discovered backends (the reference first)."""
    return [FLOOR, *sorted(discover(), key=lambda name: (name != REFERENCE, name))]


def factories(device: str, neuron: dict[str, Any] | None = None) -> dict[str, Callable[[], nn.Module]]:
    """Layer builders of the discovered backends that run on `device`; the others are printed as skipped, with why."""
    knobs = dict(neuron or NEURON)
    plugs = discover()
    out: dict[str, Callable[[], nn.Module]] = {FLOOR: nn.ReLU}
    for name in known_backends()[1:]:
        plug = plugs[name]
        if not plug.runs_on(device):
            print(f"[skip {name}] backend={name} runs on {' / '.join(plug.devices)} only (device={device})")
            continue
        why = plug.unavailable()
        if why:
            print(f"[skip {name}] {why}")
            continue
        out[name] = functools.partial(factory(name), **(plug.bench_neuron or knobs))
    return out


#: per-op energies as in conf/callbacks/default.yaml (Horowitz, ISSCC 2014, 45 nm, 32-bit float)
E_AC_PJ, E_MAC_PJ = 0.9, 4.6


def build(widths: list[int], layer: Callable[[], nn.Module]) -> nn.Sequential:
    """Linear -> layer blocks through `widths`, a Linear readout for the last pair."""
    mods: list[nn.Module] = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2 or len(widths) == 2:
            mods.append(layer())
    return nn.Sequential(*mods)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(net: nn.Module, x: torch.Tensor, device: str) -> tuple[float, float]:
    """(forward seconds, forward+backward seconds) of one training step, states reset first."""
    reset_states(net.modules())
    net.zero_grad(set_to_none=True)
    _sync(device)
    start = time.perf_counter()
    out = net(x)
    _sync(device)
    forward = time.perf_counter() - start
    out.sum(dim=1).square().mean().backward()
    _sync(device)
    return forward, time.perf_counter() - start


def measure(
    widths: list[int], steps: int, batch: int, builders: dict[str, Callable[[], nn.Module]], device: str,
    repeats: int,
) -> dict[str, dict[str, float]]:
    """Median forward / total time per backend, timed round-robin after one warm-up step each."""
    torch.manual_seed(0)
    x = (torch.rand(batch, steps, widths[0], device=device) < 0.2).float() * 2.0
    nets = {name: build(widths, make).to(device) for name, make in builders.items()}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in nets}
    for net in nets.values():
        time_once(net, x, device)  # warm-up: kernel compile / cache load, allocator
    for _ in range(repeats):
        for name, net in nets.items():
            times[name].append(time_once(net, x, device))
    return {
        name: {
            "forward_s": statistics.median(t[0] for t in ts),
            "total_s": statistics.median(t[1] for t in ts),
            **costs(nets[name], x),
        }
        for name, ts in times.items()
    }


def costs(net: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per-sample SynOps, MACs, energy (µJ) and activation sparsity of one forward pass (untimed)."""
    reset_states(net.modules())
    with torch.no_grad(), count_costs(net) as counts:
        net(x)
    summary = counts.summary(E_AC_PJ, E_MAC_PJ)
    values = {k: float(summary[k]) for k in ("synops", "macs", "energy_uj", "activation_sparsity")}
    return {k: None if math.isnan(v) else v for k, v in values.items()}  # no spiking layer: no sparsity


def with_ratios(result: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Add speed-ups over sinabs and the ratio to the ReLU floor (total time)."""
    ref, floor = result.get(REFERENCE), result.get(FLOOR)
    for row in result.values():
        if ref:
            row["speedup_forward"] = ref["forward_s"] / row["forward_s"]
            row["speedup_total"] = ref["total_s"] / row["total_s"]
        if floor:
            row["x_floor_total"] = row["total_s"] / floor["total_s"]
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    w = max([24, *(len(r["case"]) + 2 for r in rows)])
    header = (
        f"{'case':<{w}}{'backend':<9}{'fwd ms':>10}{'fwd+bwd ms':>12}{'x sinabs fwd':>14}{'x sinabs tot':>14}"
        f"{'/floor':>8}"
    )
    print(header)  # SynOps / MACs / energy / sparsity per row are in the JSON
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:<{w}}{r['backend']:<9}{1e3 * r['forward_s']:>10.1f}{1e3 * r['total_s']:>12.1f}"
            f"{r.get('speedup_forward', float('nan')):>14.2f}{r.get('speedup_total', float('nan')):>14.2f}"
            f"{r.get('x_floor_total', float('nan')):>8.2f}"
        )


def plot(rows: list[dict[str, Any]], out: Path, batch: int) -> list[Path]:
    """Heatmap of fused's total speed-up over width x T, and speed-up vs T lines per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [r for r in rows if r["case"].startswith("grid") and r["batch"] == batch]
    steps = sorted({r["steps"] for r in grid})
    widths = sorted({r["width"] for r in grid})
    order = [b for b in dict.fromkeys(r["backend"] for r in grid) if b not in (REFERENCE, FLOOR)]
    backends = [*order, *([FLOOR] if any(r["backend"] == FLOOR for r in grid) else [])]
    from brainlab.bench.plots import label_cells, log_axis, log_value_axis

    paths = []
    fig, axes = plt.subplots(1, len(backends), figsize=(4.2 * len(backends), 3.6), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=True):
        cell = {(r["width"], r["steps"]): r.get("speedup_total", float("nan")) for r in grid if r["backend"] == backend}
        data = [[cell.get((w, t), float("nan")) for t in steps] for w in widths]
        im = ax.imshow(data, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(steps)), [str(t) for t in steps])
        ax.set_yticks(range(len(widths)), [str(w) for w in widths])
        label_cells(ax, im, data, lambda v: f"{v:.1f}x")  # black on light cells, white on dark
        ax.set(xlabel="time steps T", ylabel="layer width", title=f"{backend}: speed-up over sinabs")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths.append(out / "backends_heatmap.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for backend in backends:
        for w in widths:
            mine = [r for r in grid if r["backend"] == backend and r["width"] == w]
            pts = sorted((r["steps"], r.get("speedup_total")) for r in mine)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{backend} n={w}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set(xlabel="time steps T", ylabel="fwd+bwd speed-up over sinabs", title=f"batch {batch}")
    log_axis(ax, "x", steps)  # ticks at the measured T, as plain numbers
    log_value_axis(ax, "y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "backends_lines.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def run(
    steps: list[int], widths: list[int], batches: list[int], repeats: int, device: str, out_root: Path,
    blog: bool = True, backends: list[str] | None = None, grid: bool = True, neuron: dict[str, Any] | None = None,
    blog_model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time the grid (and the blog model); write JSON + PNGs into a new folder; return the record."""
    if backends:
        known = known_backends()
        unknown = sorted(set(backends) - set(known))
        if unknown:
            raise ConfigError(f"backends {unknown} unknown; choose from: {', '.join(known)}")
    builders = factories(device, neuron)
    if backends:
        builders = {k: v for k, v in builders.items() if k in backends or k in (FLOOR, REFERENCE)}
    blog_model = dict(blog_model or {"widths": [100, 128, 128, 128, 35], "steps": 250, "batch": 128})
    rows: list[dict[str, Any]] = []
    cases = [("grid", [w, w], t, b) for b in batches for w in widths for t in steps] if grid else []
    if blog:
        bw = [int(w) for w in blog_model["widths"]]
        cases.append((f"blog {'-'.join(map(str, bw))}", bw, int(blog_model["steps"]), int(blog_model["batch"])))
    for name, layer_widths, t, b in cases:
        result = with_ratios(measure(layer_widths, t, b, builders, device, repeats))
        case = f"grid n={layer_widths[0]} T={t} B={b}" if name == "grid" else f"{name} T={t} B={b}"
        for backend, r in result.items():
            rows.append({"case": case, "backend": backend, "width": layer_widths[0], "steps": t, "batch": b, **r})
        print_table([r for r in rows if r["case"] == case])
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    out = out_root / f"backends-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    record = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "device": device,
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "repeats": repeats,
        "neuron": dict(neuron or NEURON),
        "rows": rows,
    }
    has_grid = any(r["case"].startswith("grid") for r in rows)
    record["pngs"] = [str(p) for p in plot(rows, out, batches[0])] if has_grid else []
    record["out"] = str(out)
    (out / "backends.json").write_text(json.dumps(record, indent=2))
    print("\nall rows:")
    print_table(rows)
    print(f"\nwrote {out / 'backends.json'} {' '.join(record['pngs'])}")
    return record


def load_config(overrides: list[str]) -> DictConfig:
    """`conf/bench/backends.yaml` with Hydra overrides applied (compose API); bad overrides as one ConfigError."""
    return compose_config("bench/backends", overrides, "bench backends")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but torch sees no CUDA device here; use device=cpu")
    return device


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m brainlab.bench backends [key=value ...]`; `--help` prints the config and its keys."""
    import sys

    cfg = bench_config("backends", __doc__, sys.argv[1:] if argv is None else argv, load_config)
    if cfg is None:
        return {}
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    return run(
        steps=[int(t) for t in cfg.steps], widths=[int(w) for w in cfg.sizes], batches=[int(cfg.batch)],
        repeats=int(cfg.repeats), device=resolve_device(str(cfg.device)), out_root=Path(cfg.out),
        blog=bool(cfg.blog), backends=list(cfg.backends), grid=bool(cfg.grid),
        neuron=OmegaConf.to_container(cfg.neuron, resolve=True), blog_model=OmegaConf.to_container(cfg.blog_model),
    )


if __name__ == "__main__":
    main()
