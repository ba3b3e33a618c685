"""The blog's table reproduced: epoch time per cache strategy x backend on an SSC-shaped generated set.

    python -m brainlab.bench loading                          # small CPU default (conf/bench/loading.yaml)
    python -m brainlab.bench loading scale=full               # SSC's full 75,466-sample training set
    python -m brainlab.bench loading samples=2048 caches=[none,memory] backends=[fused] epochs=3

The config is `conf/bench/loading.yaml`, composed with Hydra's compose API; command-line words are its
overrides. The set is written in SSC's own HDF5 format (`data/SSC/ssc_train.h5`, in chunks, reused while
its parameters match) and read by tonic's SSC class with the transform of `conf/data/ssc.yaml`
(700 -> 100 channels, crop 1 s, 4 ms frames -> 250 bins). The model is the blog's
`Linear(100,128) -> IAF -> 2x[Linear(128,128) -> IAF] -> Linear(128,35)`, batch 128, drop_last. Measures

- loader alone: one warm epoch of batches moved to the device, no model, per cache;
- compute-only floor: the same model and backend on pre-made batches already on the device;
- end to end: a training epoch per cache x backend, its steps interleaved with the floor's (without loader
  workers) so load on a shared machine hits both alike; `e2e/floor` is the data path's cost (target:
  <= 1.15 for memory/gpu with the fastest backend);
- the cache's build time and disk footprint against the raw file.

Timing (`brainlab.bench.timing`): `epochs` interleaved rounds, one epoch per cache a round (the order rotating),
for the loader and for each backend's end-to-end epochs; medians and mins, the machine's load before and after. A
ratio or target verdict whose figures are noisy (fewer than 5 epochs, a wide spread, a busy machine) prints `noisy`.

Prints the table, writes `caching.json` and `caching.png` into `out`.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from brainlab.bench.timing import Load, Rounds, claim, combined, interleaved, judged, measured_load
from brainlab.core.checks import positive_int
from brainlab.core.errors import BrainlabError, ConfigError
from brainlab.core.paths import compose_config, config_dir
from brainlab.data.augment import Augment
from brainlab.data.caching import CacheStrategy, DiskCache, GpuCache, MemoryCache, NoCache, transform_key
from brainlab.data.events import Chain, FixedTimeBins
from brainlab.data.ssc import SSC
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.factory import reset_states

N_CHANNELS, N_CLASSES = 700, 35
GENERATOR_VERSION = 1
#: the issue's targets: loader speed-up over `none` (warm cache) and end-to-end epoch over the floor
LOADER_TARGETS = {"disk": 5.0, "memory": 20.0, "gpu": 50.0}
E2E_TARGET = 1.15


# --- config ----------------------------------------------------------------------------------------------
def load_config(overrides: Iterable[str] = ()) -> DictConfig:
    """`conf/bench/loading.yaml` with `key=value` overrides, resolved."""
    cfg = compose_config("bench/loading", list(overrides), "bench loading")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bench loading: {str(exc).splitlines()[0]} (keys: conf/bench/loading.yaml)") from None
    for key in ("samples", "events", "batch_size", "epochs", "write_chunk", "floor_batches"):
        positive_int(f"bench.{key}", cfg[key])
    if cfg.pairing not in ("auto", "step", "epoch"):
        raise ConfigError(f"bench.pairing={cfg.pairing!r} is not supported; choose auto, step or epoch")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"bench.device={cfg.device!r} is not supported; choose auto, cpu or cuda")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("bench.device=cuda but torch.cuda.is_available() is False: use device=cpu")
    unknown = set(cfg.caches) - {"none", "disk", "memory", "gpu"}
    if unknown:
        raise ConfigError(f"bench.caches has unknown strategies {sorted(unknown)}; choose from none, disk, "
                          "memory, gpu")
    return cfg


# --- the generated SSC-shaped set ------------------------------------------------------------------------
def generate_chunk(rng: np.random.Generator, n: int, events: int) -> tuple[list, list, np.ndarray]:
    """`n` samples: per class a drifting channel band, times in seconds over 1 s (sorted)."""
    labels = rng.integers(0, N_CLASSES, n)
    counts = rng.poisson(events, n)
    owner = np.repeat(np.arange(n), counts)
    t = rng.uniform(0, 1.0, owner.size)
    order = np.lexsort((t, owner))
    t = t[order]
    centre = (labels[owner] + 0.5) * N_CHANNELS / N_CLASSES
    u = np.clip(rng.normal(centre + 200 * np.sin(6 * t), 60), 0, N_CHANNELS - 1)
    cuts = np.cumsum(counts)[:-1]
    return (np.split(t.astype(np.float32), cuts), np.split(u.astype(np.uint16), cuts), labels)


def object_array(arrays: list[np.ndarray]) -> np.ndarray:
    """A 1-d object array of `arrays` (what h5py writes into a slice of a vlen dataset)."""
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def write_ssc_like(path: Path, n_samples: int, events: int, seed: int = 0, chunk: int = 2048,
                   regenerate: bool = False) -> Path:
    """An SSC-format file (vlen float32 `spikes/times` in s, vlen uint16 `spikes/units`, `labels`,
    `extra/*`), written `chunk` samples at a time into a temp file renamed into place. A file with the same
    parameters (kept in its attributes) is reused unless `regenerate`."""
    import h5py

    params = {"samples": n_samples, "events": events, "seed": seed, "version": GENERATOR_VERSION}
    if path.is_file() and not regenerate:
        try:
            with h5py.File(path, "r") as f:
                if {k: int(f.attrs.get(k, -1)) for k in params} == params:
                    return path
        except OSError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{time.time_ns()}")
    rng = np.random.default_rng(seed)
    try:
        with h5py.File(tmp, "w") as f:
            times = f.create_dataset("spikes/times", (n_samples,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n_samples,), dtype=h5py.vlen_dtype(np.uint16))
            labels = f.create_dataset("labels", (n_samples,), dtype=np.uint16)
            for start in range(0, n_samples, chunk):
                n = min(chunk, n_samples - start)
                t, u, y = generate_chunk(rng, n, events)
                if n == 1:  # h5py cannot broadcast a one-element object array into a vlen slice
                    times[start], units[start] = t[0], u[0]
                else:
                    times[start:start + n], units[start:start + n] = object_array(t), object_array(u)
                labels[start:start + n] = y
            f.create_dataset("extra/keys", data=np.array([f"word{k}".encode() for k in range(N_CLASSES)]))
            f.create_dataset("extra/speaker", data=np.zeros(n_samples, dtype=np.uint16))
            f.attrs.update(params)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ssc_transform() -> Callable:
    """The transform of `conf/data/ssc.yaml`, as training uses it (plus the fixed time bins)."""
    cfg = compose_config("train", ["data=ssc", "paths.output_dir=."])
    return Chain(instantiate(cfg.data.transform, _convert_="all"), FixedTimeBins(int(cfg.data.n_time_bins)))


# --- model and loops ---------------------------------------------------------------------------------------
def backends(names: list[str] | None) -> dict[str, Callable]:
    """The backend factories that run here (`conf/backend/*.yaml`); others are reported and skipped."""
    available = sorted(p.stem for p in (config_dir() / "backend").glob("*.yaml"))
    if names:
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise ConfigError(f"bench.backends has unknown backends {unknown}; choose from {available}")
    found = {}
    for name in (n for n in available if not names or n in names):
        cfg = compose_config("train", [f"backend={name}", "paths.output_dir=."])
        try:
            factory = instantiate(cfg.backend)
            factory(kind="iaf")
        except Exception as exc:  # noqa: BLE001 - a backend that cannot run here is skipped, with why
            print(f"backend {name}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        found[name] = factory
    return found


def blog_model(factory: Callable, device: torch.device) -> FeedForwardSNN:
    return FeedForwardSNN([1, 100], N_CLASSES, factory, hidden_dim=128, n_hidden=3,
                          neuron={"kind": "iaf"}).to(device)


class Trainer:
    """The blog's loop for one model: Adam, summed-over-time cross entropy, states reset every batch."""

    def __init__(self, model: torch.nn.Module, device: torch.device, augment: Augment | None = None) -> None:
        self.model, self.device, self.augment = model, device, augment
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(self, frames: torch.Tensor, targets: torch.Tensor) -> None:
        frames = frames.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        if self.augment is not None and self.augment.ops:
            frames = self.augment(frames)
        reset_states(self.model.modules())
        loss = F.cross_entropy(self.model(frames).sum(1), targets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def epoch(self, batches: Iterable) -> tuple[float, int]:
        """One timed epoch over `batches`; returns (seconds, iterations)."""
        sync(self.device)
        start, n = time.perf_counter(), 0
        for frames, targets in batches:
            self.step(frames, targets)
            n += 1
        sync(self.device)
        return time.perf_counter() - start, n


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_epoch(batches: Iterable, device: torch.device) -> tuple[float, int]:
    """Iterate one epoch of batches (moved to the device), no model."""
    sync(device)
    start, n = time.perf_counter(), 0
    for frames, targets in batches:
        frames.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        n += 1
    sync(device)
    return time.perf_counter() - start, n


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def median_row(summary: dict[str, Any], times: list[float], iterations: int) -> dict[str, Any]:
    """A loader or floor row: the median epoch (and min), iterations/s of the median, the epochs, `noisy`."""
    mid = summary["median_s"]
    return {"epoch_s": mid, "min_epoch_s": summary["min_s"], "it_s": iterations / mid, "iterations": iterations,
            "epochs_s": times, "noisy": summary["noisy"], "noisy_why": summary["why"]}


# --- the run -----------------------------------------------------------------------------------------------
def run(cfg: DictConfig) -> dict[str, Any]:
    out = Path(cfg.out)
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    pin = device.type == "cuda" if cfg.pin_memory == "auto" else bool(cfg.pin_memory)
    start = time.perf_counter()
    raw = write_ssc_like(out / "data" / "SSC" / "ssc_train.h5", cfg.samples, cfg.events, cfg.seed,
                         cfg.write_chunk, cfg.regenerate)
    write_s = time.perf_counter() - start
    transform = ssc_transform()
    dataset = SSC(save_to=str(out / "data"), split="train", transform=transform)
    key = f"bench/train/{transform_key('bench', raw.stat().st_size, cfg.samples, cfg.seed, transform)}"
    caches: dict[str, CacheStrategy] = {"none": NoCache(), "disk": DiskCache(out / "cache"), "memory": MemoryCache()}
    if device.type == "cuda" or cfg.gpu_cpu_path:
        caches["gpu"] = GpuCache(device=str(device))
    skipped = [c for c in cfg.caches if c not in caches]
    if skipped:
        print(f"caches {skipped}: skipped (cache=gpu needs CUDA; gpu_cpu_path=true times its path on the CPU)")
    caches = {k: v for k, v in caches.items() if k in cfg.caches}
    loader_kw = dict(batch_size=cfg.batch_size, shuffle=True, drop_last=cfg.drop_last, num_workers=cfg.workers,
                     pin_memory=pin)
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__},
        "setup": OmegaConf.to_container(cfg), "raw_bytes": raw.stat().st_size, "write_s": write_s,
        "loader": {}, "build_s": {}, "floor": {}, "epoch": {}, "targets": {},
    }
    wrapped = {}
    for name, cache in caches.items():
        start = time.perf_counter()
        wrapped[name] = cache.wrap(dataset, key)
        result["build_s"][name] = time.perf_counter() - start
    parts: list[Rounds] = []
    with measured_load() as load:
        if caches:
            parts.append(loader_rounds(cfg, caches, wrapped, loader_kw, device, result))
        if "disk" in caches:
            result["disk_bytes"] = dir_bytes(caches["disk"].entry(key))  # type: ignore[attr-defined]
        if not cfg.skip_train and caches:
            parts += train_all(cfg, caches, wrapped, dataset, key, loader_kw, device, result)
    result.update(combined(load, parts))
    result["targets"] = check_targets(result)
    return result


def loader_rounds(cfg: DictConfig, caches: dict[str, CacheStrategy], wrapped: dict[str, Any],
                  loader_kw: dict[str, Any], device: torch.device, result: dict[str, Any]) -> Rounds:
    """The loader alone: one epoch per cache a round, `epochs` interleaved rounds (brainlab.bench.timing)."""
    iterations: dict[str, int] = {}

    def epoch(name: str) -> float:
        seconds, iterations[name] = loader_epoch(caches[name].loader(wrapped[name], **loader_kw), device)
        return seconds

    rounds = interleaved({name: functools.partial(epoch, name) for name in caches}, rounds=cfg.epochs, warmup=0)
    for name in caches:
        result["loader"][name] = median_row(rounds.summary(name), rounds.samples[name]["seconds"], iterations[name])
    base = result["loader"].get("none")
    for row in result["loader"].values():
        row["x_none"] = base["epoch_s"] / row["epoch_s"] if base else None
        row["x_none_noisy"] = bool(base) and (base["noisy"] or row["noisy"])
    return rounds


def train_all(cfg: DictConfig, caches: dict[str, CacheStrategy], wrapped: dict[str, Any], dataset: Any, key: str,
              loader_kw: dict[str, Any], device: torch.device, result: dict[str, Any]) -> list[Rounds]:
    """Per backend: end-to-end epochs paired with floor epochs (see `paired_epoch`), one per cache a round, in
    `epochs` interleaved rounds; medians and mins."""
    source = wrapped.get("memory") or MemoryCache().wrap(dataset, key)
    premade = [(f.to(device), t.to(device)) for f, t in
               islice(MemoryCache().loader(source, **{**loader_kw, "num_workers": 0, "pin_memory": False}),
                      cfg.floor_batches)]
    augment = Augment(list(instantiate(cfg.augment, _convert_="all") or []))
    interleave = cfg.pairing == "step" or (cfg.pairing == "auto" and cfg.workers == 0)
    result["pairing"] = "step" if interleave else "epoch"
    chosen = backends(list(cfg.backends) if cfg.backends else None)
    if not cfg.backends and device.type == "cpu":
        for name in set(cfg.cpu_skip) & set(chosen):
            print(f"backend {name}: skipped on CPU (cpu_skip; name it in backends=[...] to time it)")
            del chosen[name]
    parts = []
    for bname, factory in chosen.items():
        torch.manual_seed(cfg.seed)
        floor = Trainer(blog_model(factory, device), device)
        runs = {cname: Trainer(blog_model(factory, device), device, augment) for cname in caches}
        for trainer in (floor, *runs.values()):  # untimed: kernel compiles, allocator warm-up
            for frames, targets in premade[:cfg.warmup_steps]:
                trainer.step(frames, targets)
        feed = cycle(premade)

        def epoch(cname: str, runs: dict[str, Trainer] = runs, floor: Trainer = floor, feed: Any = feed
                  ) -> dict[str, float]:
            batches = caches[cname].loader(wrapped[cname], **loader_kw)
            floor_s, e2e_s = paired_epoch(floor, runs[cname], feed, batches, interleave)
            return {"floor_s": floor_s, "epoch_s": e2e_s}

        rounds = interleaved({cname: functools.partial(epoch, cname) for cname in runs}, rounds=cfg.epochs, warmup=0)
        parts.append(rounds)
        n_iters = len(caches[next(iter(caches))].loader(wrapped[next(iter(caches))], **loader_kw))
        floors = [f for cname in runs for f in rounds.samples[cname]["floor_s"]]
        result["floor"][bname] = median_row(judged(floors, rounds.load), floors, n_iters)
        for cname in runs:
            e2e, flo = rounds.summary(cname, "epoch_s"), rounds.summary(cname, "floor_s")
            result["epoch"].setdefault(cname, {})[bname] = {
                "epoch_s": e2e["median_s"], "min_epoch_s": e2e["min_s"], "it_s": n_iters / e2e["median_s"],
                "floor_s": flo["median_s"], "x_floor": e2e["median_s"] / flo["median_s"],
                "epochs_s": rounds.samples[cname]["epoch_s"], "floor_epochs_s": rounds.samples[cname]["floor_s"],
                "noisy": e2e["noisy"] or flo["noisy"], "noisy_why": sorted(set(e2e["why"] + flo["why"]))}
    return parts


def paired_epoch(floor: Trainer, e2e: Trainer, premade: Iterator, batches: Iterable,
                 interleave: bool) -> tuple[float, float]:
    """(floor seconds, end-to-end seconds) of one epoch of `batches`, the floor taking as many steps.

    `interleave`: one floor step on a pre-made batch, then one end-to-end step (fetching its batch counts),
    in turns, so a shared machine's load hits both alike. Only without loader workers: workers would prefetch
    during the floor's steps. Otherwise a whole end-to-end epoch, then the floor's steps.
    """
    if not interleave:
        e2e_s, n = e2e.epoch(batches)
        return floor.epoch(islice(premade, n))[0], e2e_s
    floor_s = e2e_s = 0.0
    start = time.perf_counter()
    iterator = iter(batches)
    e2e_s += time.perf_counter() - start
    while True:
        sync(floor.device)
        start = time.perf_counter()
        batch = next(iterator, None)
        if batch is None:
            e2e_s += time.perf_counter() - start
            break
        e2e.step(*batch)
        sync(e2e.device)
        e2e_s += time.perf_counter() - start
        start = time.perf_counter()
        floor.step(*next(premade))
        sync(floor.device)
        floor_s += time.perf_counter() - start
    return floor_s, e2e_s


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, met or not, from this run's numbers; a timed target whose figures are noisy (or the run's
    load) has `noisy: true` and no verdict (`met: null`). The disk size is not a timing: always judged."""
    out: dict[str, Any] = {}
    busy = any("load" in w for w in result.get("noisy_why", []))
    for name, need in LOADER_TARGETS.items():
        row = result["loader"].get(name, {})
        got = row.get("x_none")
        if got is not None:
            noisy = bool(row.get("x_none_noisy")) or busy
            out[f"loader {name} >= {need:g}x none"] = {"value": got, "noisy": noisy,
                                                         "met": None if noisy else got >= need}
    if result["floor"]:
        fastest = min(result["floor"], key=lambda b: result["floor"][b]["epoch_s"])
        for name in ("memory", "gpu"):
            row = result["epoch"].get(name, {}).get(fastest)
            if row is not None:
                noisy = bool(row.get("noisy")) or busy
                out[f"e2e {name}/{fastest} <= {E2E_TARGET}x floor"] = {
                    "value": row["x_floor"], "noisy": noisy, "met": None if noisy else row["x_floor"] <= E2E_TARGET}
    if "disk_bytes" in result:
        ratio = result["disk_bytes"] / result["raw_bytes"]
        out["disk cache <= raw size"] = {"value": ratio, "noisy": False, "met": ratio <= 1.0}
    return out


def verdict(target: dict[str, Any]) -> str:
    """`met`, `NOT met`, or `noisy` (no verdict) for one target."""
    return claim(1.0, bool(target.get("noisy")), "met" if target.get("met") else "NOT met")


# --- report --------------------------------------------------------------------------------------------------
def table(result: dict[str, Any]) -> str:
    """Markdown: one row per cache x backend (loader columns repeat per backend)."""
    lines = ["| cache | loader epoch s | x vs none | build s | backend | e2e epoch s | floor s | e2e/floor |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in result["loader"].items():
        speed = claim(row["x_none"], row.get("x_none_noisy", False), "{:.1f}x") if row["x_none"] else "-"
        head = f"| {name} | {row['epoch_s']:.3f} | {speed} | {result['build_s'][name]:.2f} |"
        per_backend = result["epoch"].get(name, {})
        if not per_backend:
            lines.append(head + " - | - | - | - |")
        for b, e in per_backend.items():
            lines.append(f"{head} {b} | {e['epoch_s']:.2f} | {e['floor_s']:.2f} | "
                         f"{claim(e['x_floor'], e.get('noisy', False), '{:.3f}')} |")
    setup = result["setup"]
    lines.append(f"\n{setup['samples']} samples, batch {setup['batch_size']}, {setup['workers']} workers, "
                 f"{setup['epochs']} epoch(s) in interleaved rounds (medians; e2e paired with its floor, pairing "
                 f"{result.get('pairing', '-')}), device {result['machine']['device']}, "
                 f"{result['machine']['threads']} threads")
    if "disk_bytes" in result:
        lines.append(f"disk cache {result['disk_bytes'] / 1e6:.1f} MB vs raw {result['raw_bytes'] / 1e6:.1f} MB")
    for goal, row in result["targets"].items():
        lines.append(f"target {goal}: {row['value']:.2f} -> {verdict(row)}")
    if result.get("noisy"):
        lines.append(f"noisy: {'; '.join(result['noisy_why'])}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if result["epoch"] else 1, figsize=(11, 4), squeeze=False)
    names = list(result["loader"])
    axes[0, 0].bar(names, [result["loader"][n]["epoch_s"] for n in names], color="tab:blue")
    from brainlab.bench.plots import log_value_axis

    axes[0, 0].set(title="loader alone: one epoch", ylabel="seconds")
    log_value_axis(axes[0, 0], "y")
    if result["epoch"]:
        trained = [n for n in names if n in result["epoch"]]
        width = 0.8 / max(1, len(result["floor"]))
        for i, b in enumerate(result["floor"]):
            xs = np.arange(len(trained)) + i * width
            axes[0, 1].bar(xs, [result["epoch"][n][b]["epoch_s"] for n in trained], width, label=b, color=f"C{i}")
            # each cache's own paired floor, over its bar
            axes[0, 1].hlines([result["epoch"][n][b]["floor_s"] for n in trained], xs - width / 2, xs + width / 2,
                              colors="black", linestyles="--", lw=1.2)
        axes[0, 1].set_xticks(np.arange(len(trained)) + width * (len(result["floor"]) - 1) / 2, trained)
        axes[0, 1].set(title="training epoch (dashed: its paired compute-only floor)", ylabel="seconds")
        axes[0, 1].legend()
    fig.suptitle(f"SSC-shaped set, {result['setup']['samples']} samples, {result['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m brainlab.bench loading [key=value ...]`; returns the result (its `out` folder included)."""
    args = list(argv or [])
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return {}
    try:
        cfg = load_config(args)
        result = run(cfg)
    except BrainlabError as exc:
        raise SystemExit(f"error: {exc}") from None
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "caching.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "caching.png")
    print(table(result))
    print(Load.from_fields(result).describe())
    print(f"wrote {out / 'caching.json'} and {out / 'caching.png'}")
    result["out"] = str(out)
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
