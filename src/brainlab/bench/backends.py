"""The backend speed grid: forward and forward+backward time per spiking backend (and, `peers=true`, per SNN
library people train with), its ratio to the dense floor, speed-up over sinabs, and whether its spikes equal sinabs's.

    python -m brainlab.bench backends                                  # conf/bench/backends.yaml as is
    python -m brainlab.bench backends peers=true                       # + snntorch, norse, spikingjelly
    python -m brainlab.bench backends device=cuda                      # adds exodus where it is installed
    python -m brainlab.bench backends grid=false repeats=7             # only the blog model
    python -m brainlab.bench backends sizes=[32] steps=[16] batch=8 repeats=1 blog=false   # smoke size
    python -m brainlab.bench backends neuron.kind=lif +neuron.tau_mem=10.0   # another neuron
    python -m brainlab.bench backends peers=true +neuron.spike_fn=single # the neuron the peers' spikes compare with

Arguments are Hydra overrides of `conf/bench/backends.yaml` (composed with Hydra's compose API).

Each grid point is one `Linear(width, width) -> spiking layer` block on random input `(batch, T, width)`;
the blog model is `100 -> 128 -> 128 -> 128 -> 35` with three spiking layers, T=250, batch 128. Every row runs the
same net with the same weights (copied from one seeded build) and the same input; only the spiking layers (and, for
`<backend>+event`, the synapse layers) differ. Rows:

- `floor`: ReLU in place of every spiking layer, the dense math alone (`x floor` is each row's ratio to it);
- every backend of `conf/backend/` that runs on the device (`brainlab.snn.plug.discover`; `exodus` needs CUDA and
  sinabs-exodus, `fastsnn` times its own LIF, as their plugs say), `sinabs` being the reference of the speed-ups;
- `<backend>+event` for a backend whose synapse layer takes `backend.synapse` (fused): the event-driven synapse
  (`brainlab.snn.event_linear`, issue 27) in every Linear, on CPU; `<backend>+auto`: `synapse=auto`, each Linear
  choosing event or dense by its first input's density (the blog model's first layer, 20 % active, stays dense);
- `peers=true` (or a list): snntorch, norse, norse+compile and spikingjelly (`brainlab.bench.peers`; a missing
  package is a `not installed` row with its pip line).

`spikes_equal` compares each row's spikes, layer by layer, with sinabs's on one forward pass: `true` / `false` (with
the number of differing entries) where the neuron model is the same, `n/a` with why where it is not (the floor, a
backend with its own neuron, a peer whose neuron differs: see `brainlab.bench.peers`).

Timing (`brainlab.bench.timing`): one training step (states reset, forward, a loss on the summed output, backward)
per row, in interleaved rounds (every row once a round, the order rotating) after one warm-up step each; median
and min over `repeats` rounds, the machine's load before and after. A ratio is printed as `noisy` where either of its
two rows is noisy (few repeats, wide spread, busy machine). Prints a table, writes `backends.json`,
`backends_floor.png` (x floor per row and case) and, with grid points, `backends_heatmap.png` and
`backends_lines.png` into a new run folder under `out`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from brainlab.bench import peers as peer_libs
from brainlab.bench.cli import bench_config
from brainlab.bench.timing import Rounds, claim, combined, interleaved, measured_load
from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config
from brainlab.metrics.neuromorphic import count_costs
from brainlab.snn.factory import reset_states
from brainlab.snn.plug import discover, factory, linear_for

NEURON = {"kind": "iaf", "spike_threshold": 1.0}
FLOOR, REFERENCE = "floor", "sinabs"  # speed-ups are over REFERENCE, the x floor ratio over FLOOR
EVENT = "+event"  # the event-synapse variant of a backend whose synapse layer takes `synapse`
AUTO = "+auto"  # the same with `synapse=auto`: event where the layer's input is sparse enough
SYNAPSE_VARIANTS = {EVENT: "event", AUTO: "auto"}
NA = "n/a"


@dataclass(frozen=True)
class Impl:
    """One row to time: its spiking layer and synapse layer builders, and how its spikes compare with sinabs's.
    `layer` None: a row that is not timed (`status` says why: not installed, skipped)."""

    name: str
    layer: Callable[[], nn.Module] | None
    linear: Callable[..., nn.Linear] = nn.Linear
    compare: bool = False
    note: str = ""
    status: str = "ok"
    why: str = ""
    install: str = ""
    peer: bool = False


def event_variants() -> list[str]:
    """`<backend>+event` and `<backend>+auto` for every discovered backend whose synapse layer takes
    `backend.synapse`."""
    return [f"{name}{suffix}" for name, plug in sorted(discover().items()) if "synapse" in plug.linear_options
            for suffix in SYNAPSE_VARIANTS]


def synapse_variant(name: str) -> tuple[str, str | None]:
    """`(backend, backend.synapse)` of a row name: `fused+auto` -> (`fused`, `auto`); no suffix: (name, None)."""
    for suffix, synapse in SYNAPSE_VARIANTS.items():
        if name.endswith(suffix):
            return name.removesuffix(suffix), synapse
    return name, None


def known_backends() -> list[str]:
    """`floor`, the discovered backends (the reference first), then their event-synapse variants."""
    return [FLOOR, *sorted(discover(), key=lambda name: (name != REFERENCE, name)), *event_variants()]


def implementations(device: str, neuron: dict[str, Any] | None = None, backends: list[str] | None = None,
                    peers: list[str] | None = None) -> list[Impl]:
    """The rows of one case: the floor, the backends that run on `device` (the others printed as skipped, with
    why), their event-synapse variants, and the peers named in `peers`."""
    knobs = dict(neuron or NEURON)
    wanted = set(backends or [])
    plugs = discover()
    out = [Impl(FLOOR, nn.ReLU, note="ReLU: no spikes")]
    for name in known_backends()[1:]:
        if wanted and name not in wanted and name not in (FLOOR, REFERENCE):
            continue
        base, synapse = synapse_variant(name)
        plug = plugs[base]
        if not plug.runs_on(device):
            print(f"[skip {name}] backend={base} runs on {' / '.join(plug.devices)} only (device={device})")
            continue
        why = plug.unavailable()
        if why:
            print(f"[skip {name}] {why}")
            continue
        options = dict(plug.bench_neuron or knobs)
        if synapse:
            if not device.startswith("cpu"):
                print(f"[skip {name}] the event synapse runs on CPU tensors (on {device} it takes the dense path)")
                continue
            options["synapse"] = synapse
        make = functools.partial(factory(base), **options)
        own = plug.support is None or plug.bench_neuron is not None
        note = ("the reference" if name == REFERENCE else "its own neuron knobs" if own else
                "same neuron; the event synapse sums in input order, so a spike may flip where a membrane lies "
                "within rounding of the threshold" if synapse else "same neuron knobs")
        out.append(Impl(name, make, linear_for(make), compare=not own and name != REFERENCE, note=note))
    for row in peer_libs.rows(list(peers or []), knobs):
        out.append(Impl(row.name, row.layer, compare=row.match.compare, note=row.match.note, status=row.status,
                        why=row.why, install=row.install, peer=True))
    return out


#: per-op energies as in conf/callbacks/default.yaml (Horowitz, ISSCC 2014, 45 nm, 32-bit float)
E_AC_PJ, E_MAC_PJ = 0.9, 4.6


def build(widths: list[int], layer: Callable[[], nn.Module],
          linear: Callable[..., nn.Linear] = nn.Linear) -> nn.Sequential:
    """Linear -> layer blocks through `widths`, a Linear readout for the last pair (`linear`: the synapse layer)."""
    mods: list[nn.Module] = []
    for i in range(len(widths) - 1):
        mods.append(linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2 or len(widths) == 2:
            mods.append(layer())
    return nn.Sequential(*mods)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """The Linear layers' weights and biases of `source` into `target`'s, in order (the same net, the same numbers)."""
    src = [m for m in source.modules() if isinstance(m, nn.Linear)]
    dst = [m for m in target.modules() if isinstance(m, nn.Linear)]
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} Linear layers to copy into {len(dst)}")
    with torch.no_grad():
        for a, b in zip(src, dst, strict=True):
            b.weight.copy_(a.weight)
            if b.bias is not None:
                b.bias.copy_(a.bias)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(net: nn.Module, x: torch.Tensor, device: str) -> dict[str, float]:
    """`forward_s` and `total_s` (forward + backward) of one training step, states reset first."""
    reset_states(net.modules())
    net.zero_grad(set_to_none=True)
    _sync(device)
    start = time.perf_counter()
    out = net(x)
    _sync(device)
    forward = time.perf_counter() - start
    out.sum(dim=1).square().mean().backward()
    _sync(device)
    return {"forward_s": forward, "total_s": time.perf_counter() - start}


def spike_trains(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every spiking layer (every non-Linear block) on one forward pass, states reset first."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
             for m in net if not isinstance(m, nn.Linear)]
    try:
        reset_states(net.modules())
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def spike_check(impl: Impl, mine: list[torch.Tensor] | None, ref: list[torch.Tensor] | None) -> dict[str, Any]:
    """`spikes_equal` (true / false / n/a) against sinabs's spikes, the differing entries and the note."""
    if not impl.compare or mine is None:
        return {"spikes_equal": NA, "spikes_note": impl.note}
    if ref is None:
        return {"spikes_equal": NA, "spikes_note": f"no sinabs row to compare with ({impl.note})"}
    if [t.shape for t in mine] != [t.shape for t in ref]:
        return {"spikes_equal": False, "spikes_note": f"spike shapes differ ({impl.note})"}
    differ = sum(int((a.cpu() != b.cpu()).sum()) for a, b in zip(mine, ref, strict=True))
    return {"spikes_equal": differ == 0, "spike_mismatches": differ, "spikes_compared": sum(t.numel() for t in ref),
            "spikes_note": impl.note}


def not_timed(impl: Impl) -> dict[str, Any]:
    row = {"status": impl.status, "why": impl.why, "spikes_equal": NA, "spikes_note": impl.note, "peer": impl.peer}
    return {**row, "install": impl.install} if impl.install else row


def measure(
    widths: list[int], steps: int, batch: int, impls: list[Impl], device: str, repeats: int,
) -> tuple[dict[str, dict[str, Any]], Rounds]:
    """Per row: median and min forward / total time over interleaved rounds after one warm-up step each, the spike
    check against sinabs and the costs; rows that are not timed carry their status and why."""
    torch.manual_seed(0)
    x = (torch.rand(batch, steps, widths[0], device=device) < 0.2).float() * 2.0
    source = build(widths, nn.ReLU)  # the weights every row gets
    rows: dict[str, dict[str, Any]] = {}
    nets: dict[str, nn.Sequential] = {}
    for impl in impls:
        if impl.layer is None:
            rows[impl.name] = not_timed(impl)
            continue
        try:
            net = build(widths, impl.layer, impl.linear).to(device)
            copy_weights(source, net)
            if impl.peer:
                time_once(net, x, device)  # a peer that cannot build or step is a row, not a crash
        except Exception as err:
            if not impl.peer:
                raise
            first = str(err).splitlines()[0] if str(err) else ""
            print(f"[failed {impl.name}] {type(err).__name__}: {first}")
            rows[impl.name] = not_timed(Impl(impl.name, None, status="failed", why=f"{type(err).__name__}: {first}",
                                             note=impl.note, peer=True))
            continue
        nets[impl.name] = net
        rows[impl.name] = {}
    by_name = {impl.name: impl for impl in impls}
    ref = spike_trains(nets[REFERENCE], x) if REFERENCE in nets else None
    checks = {name: spike_check(by_name[name], spike_trains(net, x) if by_name[name].compare else None, ref)
              for name, net in nets.items()}  # one row's spikes at a time beside sinabs's
    rounds = interleaved({name: functools.partial(time_once, net, x, device) for name, net in nets.items()},
                         rounds=repeats, warmup=1)
    for name, net in nets.items():
        s = rounds.summaries(name)
        rows[name] = {
            "status": "ok", "peer": by_name[name].peer,
            "forward_s": s["forward_s"]["median_s"], "total_s": s["total_s"]["median_s"],
            "forward_min_s": s["forward_s"]["min_s"], "total_min_s": s["total_s"]["min_s"],
            "total_spread": s["total_s"]["spread"], "samples": s["total_s"]["n"],
            "noisy": rounds.noisy(name), "noisy_why": sorted({w for m in s.values() for w in m["why"]}),
            **checks[name],
            **costs(net, x),
        }
    return rows, rounds


def costs(net: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per-sample SynOps, MACs, energy (µJ) and activation sparsity of one forward pass (untimed)."""
    reset_states(net.modules())
    with torch.no_grad(), count_costs(net) as counts:
        net(x)
    summary = counts.summary(E_AC_PJ, E_MAC_PJ)
    values = {k: float(summary[k]) for k in ("synops", "macs", "energy_uj", "activation_sparsity")}
    return {k: None if math.isnan(v) else v for k, v in values.items()}  # no spiking layer: no sparsity


def with_ratios(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Add speed-ups over sinabs and the ratio to the ReLU floor (total time) to the timed rows; `ratios_noisy`
    where the row, sinabs's or the floor's timing is noisy (the table then prints `noisy` for them)."""
    timed = {k: v for k, v in result.items() if v.get("status") == "ok"}
    ref, floor = timed.get(REFERENCE), timed.get(FLOOR)
    for row in timed.values():
        if ref:
            row["speedup_forward"] = ref["forward_s"] / row["forward_s"]
            row["speedup_total"] = ref["total_s"] / row["total_s"]
        if floor:
            row["x_floor_total"] = row["total_s"] / floor["total_s"]
            row["x_floor_min"] = row["total_min_s"] / floor["total_min_s"]
        row["ratios_noisy"] = any(r["noisy"] for r in (row, ref, floor) if r)
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    w = max([24, *(len(r["case"]) + 2 for r in rows)])
    b = max([9, *(len(r["backend"]) + 2 for r in rows)])
    header = (f"{'case':<{w}}{'row':<{b}}{'fwd ms':>9}{'fwd+bwd ms':>12}{'min ms':>9}{'x sinabs fwd':>14}"
              f"{'x sinabs tot':>14}{'/floor':>8}{'spikes=sinabs':>15}")
    print(header)  # SynOps / MACs / energy / sparsity per row are in the JSON
    print("-" * len(header))
    for r in rows:
        if r.get("status", "ok") != "ok":
            extra = f"; {r['install']}" if r.get("install") else ""
            print(f"{r['case']:<{w}}{r['backend']:<{b}}{r['status']}: {r['why']}{extra}")
            continue
        noisy = r.get("ratios_noisy", False)
        print(
            f"{r['case']:<{w}}{r['backend']:<{b}}{1e3 * r['forward_s']:>9.1f}{1e3 * r['total_s']:>12.1f}"
            f"{1e3 * r['total_min_s']:>9.1f}{claim(r.get('speedup_forward'), noisy):>14}"
            f"{claim(r.get('speedup_total'), noisy):>14}{claim(r.get('x_floor_total'), noisy):>8}"
            f"{str(r.get('spikes_equal', NA)).lower():>15}"
        )


def _grid_panels(n: int, width: float, height: float) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    cols = max(1, min(4, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_floor(rows: list[dict[str, Any]], out: Path) -> Path:
    """Per case: each timed row's fwd+bwd time over the floor's (bar: medians; tick: min over min), noisy hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from brainlab.bench.plots import log_value_axis

    timed = [r for r in rows if r.get("status", "ok") == "ok" and r.get("x_floor_total") is not None]
    cases = list(dict.fromkeys(r["case"] for r in timed))
    fig, axes = _grid_panels(len(cases), 5.0, 0.45 * max(4, max(sum(r["case"] == c for r in timed) for c in cases)))
    for ax, case in zip(axes, cases, strict=False):
        mine = [r for r in timed if r["case"] == case and r["backend"] != FLOOR]
        ys = range(len(mine))
        bars = ax.barh(ys, [r["x_floor_total"] for r in mine], color=["C1" if r["peer"] else "C0" for r in mine])
        for bar, r in zip(bars, mine, strict=True):
            if r.get("ratios_noisy"):
                bar.set_hatch("//")
                bar.set_alpha(0.55)
        (tick,) = ax.plot([r["x_floor_min"] for r in mine], ys, "k|", markersize=12, label="min / min")
        ax.set_yticks(list(ys), [f"{r['backend']}{' (noisy)' if r.get('ratios_noisy') else ''}" for r in mine])
        ax.axvline(1.0, color="grey", lw=0.8)
        ax.invert_yaxis()
        log_value_axis(ax, "x")
        ax.set(xlabel="fwd+bwd time / ReLU floor (median)", title=case)
        ax.legend(handles=[Patch(color="C0", label="brainlab"), Patch(color="C1", label="peer"), tick], fontsize=7,
                  loc="lower right")
    fig.tight_layout()
    path = out / "backends_floor.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(rows: list[dict[str, Any]], out: Path, batch: int) -> list[Path]:
    """Heatmap of each row's total speed-up over sinabs over width x T, and speed-up vs T lines per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [r for r in rows if r["case"].startswith("grid") and r["batch"] == batch and r.get("status", "ok") == "ok"]
    steps = sorted({r["steps"] for r in grid})
    widths = sorted({r["width"] for r in grid})
    order = [b for b in dict.fromkeys(r["backend"] for r in grid) if b not in (REFERENCE, FLOOR)]
    backends = [*order, *([FLOOR] if any(r["backend"] == FLOOR for r in grid) else [])]
    from brainlab.bench.plots import label_cells, log_axis, log_value_axis

    paths = []
    fig, axes = _grid_panels(len(backends), 4.2, 3.6)
    for ax, backend in zip(axes, backends, strict=False):
        cell = {(r["width"], r["steps"]): r.get("speedup_total", float("nan")) for r in grid if r["backend"] == backend}
        data = [[cell.get((w, t), float("nan")) for t in steps] for w in widths]
        im = ax.imshow(data, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(steps)), [str(t) for t in steps])
        ax.set_yticks(range(len(widths)), [str(w) for w in widths])
        label_cells(ax, im, data, lambda v: f"{v:.1f}x")  # black on light cells, white on dark
        noisy = any(r.get("ratios_noisy") for r in grid if r["backend"] == backend)
        ax.set(xlabel="time steps T", ylabel="layer width",
               title=f"{backend}: speed-up over sinabs{' (noisy)' if noisy else ''}")
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


def peer_names(value: Any) -> list[str]:
    """`peers=true` -> every peer, `false` / null -> none, a name or a list -> those (an unknown name refused)."""
    if value is None or value is False:
        return []
    if value is True:
        return list(peer_libs.NAMES)
    names = [str(v) for v in value] if isinstance(value, list | tuple | ListConfig) else [str(value)]
    unknown = sorted(set(names) - set(peer_libs.NAMES))
    if unknown:
        raise ConfigError(f"peers={unknown} unknown; choose true, false or a list of: {', '.join(peer_libs.NAMES)}")
    return names


def run(
    steps: list[int], widths: list[int], batches: list[int], repeats: int, device: str, out_root: Path,
    blog: bool = True, backends: list[str] | None = None, grid: bool = True, neuron: dict[str, Any] | None = None,
    blog_model: dict[str, Any] | None = None, peers: list[str] | None = None,
) -> dict[str, Any]:
    """Time the grid (and the blog model); write JSON + PNGs into a new folder; return the record."""
    if backends:
        known = known_backends()
        unknown = sorted(set(backends) - set(known))
        if unknown:
            raise ConfigError(f"backends {unknown} unknown; choose from: {', '.join(known)}")
    impls = implementations(device, neuron, backends, peers)
    blog_model = dict(blog_model or {"widths": [100, 128, 128, 128, 35], "steps": 250, "batch": 128})
    rows: list[dict[str, Any]] = []
    cases = [("grid", [w, w], t, b) for b in batches for w in widths for t in steps] if grid else []
    if blog:
        bw = [int(w) for w in blog_model["widths"]]
        cases.append((f"blog {'-'.join(map(str, bw))}", bw, int(blog_model["steps"]), int(blog_model["batch"])))
    parts: list[Rounds] = []
    timings: list[dict[str, Any]] = []
    with measured_load() as load:
        for name, layer_widths, t, b in cases:
            result, rounds = measure(layer_widths, t, b, impls, device, repeats)
            with_ratios(result)
            case = f"grid n={layer_widths[0]} T={t} B={b}" if name == "grid" else f"{name} T={t} B={b}"
            parts.append(rounds)
            timings.append({"case": case, **rounds.fields()})
            for backend, r in result.items():
                rows.append({"case": case, "backend": backend, "width": layer_widths[0], "steps": t, "batch": b, **r})
            print_table([r for r in rows if r["case"] == case])
            print(rounds.load.describe())
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    out = out_root / f"backends-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    record = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "device": device,
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "repeats": repeats,
        "neuron": dict(neuron or NEURON),
        "peers": list(peers or []),
        "versions": versions(peers or []),
        **combined(load, parts),
        "cases": timings,
        "rows": rows,
    }
    has_grid = any(r["case"].startswith("grid") for r in rows)
    pngs = [plot_floor(rows, out)] if any(r.get("x_floor_total") is not None for r in rows) else []
    record["pngs"] = [str(p) for p in [*pngs, *(plot(rows, out, batches[0]) if has_grid else [])]]
    record["out"] = str(out)
    (out / "backends.json").write_text(json.dumps(record, indent=2))
    print("\nall rows:")
    print_table(rows)
    print(load.describe() + (f"; noisy: {', '.join(record['noisy_why'])}" if record["noisy"] else ""))
    print(f"\nwrote {out / 'backends.json'} {' '.join(record['pngs'])}")
    return record


def versions(peers: list[str]) -> dict[str, str]:
    """The versions of sinabs and of the peers' packages that imported (for the record)."""
    import importlib.metadata as md

    found = {}
    for package in dict.fromkeys(["sinabs", *(peer_libs.BUILDERS[p][0] for p in peers)]):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            found[package] = "not installed"
    return found


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
        peers=peer_names(cfg.get("peers")),
    )


if __name__ == "__main__":
    main()
