"""The blog's table reproduced: epoch time per cache strategy x backend on an SSC-shaped synthetic set.

    python -m brainlab.bench.caching                       # small CPU default (512 samples)
    python -m brainlab.bench.caching --samples 75466       # the blog's full SSC training-set scale

Writes an SSC-format HDF5 file (`SSC/ssc_train.h5`, read by tonic's SSC class), takes the transform from
`conf/data/ssc.yaml` (700 -> 100 channels, crop 1 s, 4 ms frames -> 250 bins) and the blog's network
(`Linear(100,128) -> IAF -> 2x[Linear(128,128) -> IAF] -> Linear(128,35)`, batch 128, drop_last). Measures

- loader alone: one warm epoch of batches, no model, per cache (`none` transforms every time);
- compute-only floor: the model on pre-made batches, per backend;
- end to end: one training epoch per cache x backend;
- the cache's build time and disk footprint against the raw file.

Prints a table, writes `caching.json` and `caching.png` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from brainlab.data.caching import CacheStrategy, DiskCache, GpuCache, MemoryCache, NoCache, transform_key
from brainlab.data.events import Chain, FixedTimeBins
from brainlab.data.ssc import SSC
from brainlab.errors import BrainlabError
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn.factory import reset_states
from brainlab.train import config_path

N_CHANNELS, N_CLASSES, N_BINS = 700, 35, 250


def write_ssc_like(path: Path, n_samples: int, events_per_sample: int, seed: int = 0) -> Path:
    """An SSC-format file: vlen float32 `spikes/times` (s), vlen uint16 `spikes/units`, `labels`, `extra/*`."""
    import h5py

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (n_samples,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (n_samples,), dtype=h5py.vlen_dtype(np.uint16))
        labels = rng.integers(0, N_CLASSES, n_samples)
        for i, label in enumerate(labels):
            n = int(rng.poisson(events_per_sample))
            t = np.sort(rng.uniform(0, 1.0, n)).astype(np.float32)
            centre = (label + 0.5) * N_CHANNELS / N_CLASSES
            u = np.clip(rng.normal(centre + 200 * np.sin(6 * t), 60), 0, N_CHANNELS - 1)
            times[i], units[i] = t, u.astype(np.uint16)
        f.create_dataset("labels", data=labels.astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"word{k}".encode() for k in range(N_CLASSES)]))
        f.create_dataset("extra/speaker", data=np.zeros(n_samples, dtype=np.uint16))
    return path


def ssc_transform() -> Callable:
    """The transform of `conf/data/ssc.yaml`, as training uses it (plus the fixed time bins)."""
    with initialize_config_dir(config_dir=config_path(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=ssc", "paths.output_dir=."])
    return Chain(instantiate(cfg.data.transform, _convert_="all"), FixedTimeBins(int(cfg.data.n_time_bins)))


def backends(names: list[str] | None) -> dict[str, Callable]:
    """The backend factories that import here (`conf/backend/*.yaml`); others are reported and skipped."""
    found = {}
    for file in sorted(Path(config_path(), "backend").glob("*.yaml")):
        if names and file.stem not in names:
            continue
        with initialize_config_dir(config_dir=config_path(), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"backend={file.stem}", "paths.output_dir=."])
        try:
            factory = instantiate(cfg.backend)
            factory(kind="iaf")
        except Exception as exc:  # noqa: BLE001 - a backend that cannot run here is skipped, with why
            print(f"backend {file.stem}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        found[file.stem] = factory
    return found


def blog_model(factory: Callable, device: torch.device) -> FeedForwardSNN:
    return FeedForwardSNN([1, 100], N_CLASSES, factory, hidden_dim=128, n_hidden=3,
                          neuron={"kind": "iaf"}).to(device)


def train_epoch(model: torch.nn.Module, batches: Any, device: torch.device) -> tuple[float, int]:
    """One epoch of the blog's loop; returns (seconds, iterations)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, n = time.perf_counter(), 0
    for frames, targets in batches:
        frames, targets = frames.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        reset_states(model.modules())
        loss = F.cross_entropy(model(frames).sum(1), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, n


def loader_epoch(batches: Any, device: torch.device) -> tuple[float, int]:
    """Iterate one epoch of batches (moved to the device), no model."""
    start, n = time.perf_counter(), 0
    for frames, targets in batches:
        frames.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, n


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raw = write_ssc_like(out / "data" / "SSC" / "ssc_train.h5", args.samples, args.events, args.seed)
    transform = ssc_transform()
    dataset = SSC(save_to=str(out / "data"), split="train", transform=transform)
    key = f"bench/train/{transform_key('bench', raw.stat().st_size, args.samples, args.seed, transform)}"
    caches: dict[str, CacheStrategy] = {"none": NoCache(), "disk": DiskCache(out / "cache"), "memory": MemoryCache()}
    if device.type == "cuda":
        caches["gpu"] = GpuCache(device="cuda")
    caches = {k: v for k, v in caches.items() if k in args.caches}
    loader_kw = dict(batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers,
                     pin_memory=device.type == "cuda")
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpu_count": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    "torch": torch.__version__},
        "setup": {k: getattr(args, k) for k in ("samples", "events", "batch_size", "workers", "seed")},
        "raw_bytes": raw.stat().st_size, "loader": {}, "build_s": {}, "floor": {}, "epoch": {},
    }
    wrapped = {}
    for name, cache in caches.items():
        start = time.perf_counter()
        wrapped[name] = cache.wrap(dataset, key)
        result["build_s"][name] = time.perf_counter() - start
        seconds, iters = loader_epoch(cache.loader(wrapped[name], **loader_kw), device)
        result["loader"][name] = {"epoch_s": seconds, "it_s": iters / seconds, "iterations": iters}
    if "disk" in caches:
        result["disk_bytes"] = dir_bytes(Path(args.out) / "cache")
    if not args.skip_train:
        premade = list(MemoryCache().loader(wrapped.get("memory") or MemoryCache().wrap(dataset, key),
                                            batch_size=args.batch_size, shuffle=False, drop_last=True))
        premade = [(f.to(device), t.to(device)) for f, t in premade]
        for bname, factory in backends(args.backends).items():
            torch.manual_seed(args.seed)
            seconds, iters = train_epoch(blog_model(factory, device), premade, device)
            result["floor"][bname] = {"epoch_s": seconds, "it_s": iters / seconds}
            for cname, cache in caches.items():
                torch.manual_seed(args.seed)
                seconds, iters = train_epoch(blog_model(factory, device), cache.loader(wrapped[cname], **loader_kw),
                                             device)
                result["epoch"].setdefault(cname, {})[bname] = {
                    "epoch_s": seconds, "it_s": iters / seconds,
                    "x_floor": seconds / result["floor"][bname]["epoch_s"]}
    base = result["loader"].get("none", {}).get("epoch_s")
    for row in result["loader"].values():
        row["speedup_vs_none"] = base / row["epoch_s"] if base else None
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["| loading | loader epoch s | it/s | x none | build s |" +
             "".join(f" {b} epoch s (x floor) |" for b in result["floor"]),
             "|---|---|---|---|---|" + "---|" * len(result["floor"])]
    for name, row in result["loader"].items():
        cells = "".join(
            f" {result['epoch'][name][b]['epoch_s']:.2f} ({result['epoch'][name][b]['x_floor']:.2f}x) |"
            for b in result["floor"])
        speed = row["speedup_vs_none"]
        lines.append(f"| {name} | {row['epoch_s']:.3f} | {row['it_s']:.1f} | "
                     f"{speed:.1f}x | {result['build_s'][name]:.2f} |{cells}" if speed else "")
    if result["floor"]:
        lines.append("| compute-only floor | | | | |" +
                     "".join(f" {row['epoch_s']:.2f} |" for row in result["floor"].values()))
    if "disk_bytes" in result:
        lines.append(f"\ndisk cache {result['disk_bytes'] / 1e6:.1f} MB vs raw {result['raw_bytes'] / 1e6:.1f} MB")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if result["epoch"] else 1, figsize=(11, 4), squeeze=False)
    names = list(result["loader"])
    axes[0, 0].bar(names, [result["loader"][n]["epoch_s"] for n in names], color="tab:blue")
    axes[0, 0].set(title="loader alone: one epoch", ylabel="seconds", yscale="log")
    if result["epoch"]:
        width = 0.8 / max(1, len(result["floor"]))
        for i, b in enumerate(result["floor"]):
            xs = np.arange(len(names)) + i * width
            axes[0, 1].bar(xs, [result["epoch"][n][b]["epoch_s"] for n in names], width, label=b)
            axes[0, 1].axhline(result["floor"][b]["epoch_s"], ls="--", lw=1, color=f"C{i}")
        axes[0, 1].set_xticks(np.arange(len(names)) + width * (len(result["floor"]) - 1) / 2, names)
        axes[0, 1].set(title="training epoch (dashed: compute-only floor)", ylabel="seconds")
        axes[0, 1].legend()
    fig.suptitle(f"SSC-shaped set, {result['setup']['samples']} samples, {result['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=512, help="training samples (SSC has 75466)")
    p.add_argument("--events", type=int, default=4000, help="mean events per sample")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (the blog used 4)")
    p.add_argument("--caches", nargs="+", default=["none", "disk", "memory", "gpu"])
    p.add_argument("--backends", nargs="*", default=None, help="default: every conf/backend that imports")
    p.add_argument("--skip-train", action="store_true", help="loader timings only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/bench/caching")
    args = p.parse_args(argv)
    try:
        result = run(args)
    except BrainlabError as exc:
        raise SystemExit(f"error: {exc}") from None
    out = Path(args.out)
    (out / "caching.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "caching.png")
    print(table(result))
    print(f"wrote {out / 'caching.json'} and {out / 'caching.png'}")
    return result


if __name__ == "__main__":
    main()
