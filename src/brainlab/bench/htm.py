"""HTM streaming speed: rows/s of the batched HTM (`brainlab.nets.htm.HTM`) per layer size and lockstep width.

`python -m brainlab.bench htm [tm=bami|backtracking] [sizes=[2048x32,16384x64]] [streams=[1,16,58]] [rows=500]
[corpus=NAB_ROOT]` (conf/bench/htm.yaml; the old `--flags` still work for one release, with a deprecation line)
streams the first `rows` rows of the `streams` longest NAB files (or generated sine-plus-noise streams
when no corpus is given) through fresh detectors with Numenta's NAB settings (conf/model/htm.yaml) and prints
a table of rows/s (all streams' rows / wall time of the HTM, learning on). Writes `htm.json` and `htm.png`
under `out`. Rates depend on the state (early rows burst more), so compare runs with the same `rows`.

Timing (`brainlab.bench.timing`): every (size, streams) point runs once a round on a fresh detector, `rounds`
interleaved rounds (the order rotating); rows/s of the median, the min, and `noisy` (fewer than 5 rounds, a wide
spread, a busy machine) beside the machine's load before and after.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import yaml

from brainlab.bench.cli import as_list, bench_config
from brainlab.bench.timing import interleaved
from brainlab.core.checks import check_choice, positive_int
from brainlab.core.paths import config_dir
from brainlab.nets.htm import HTM


def net_config(columns: int, cells: int, tm: str = "bami") -> dict[str, Any]:
    """conf/model/htm.yaml's net (tm="backtracking": with conf/model/htm_backtracking.yaml's TM on top)."""
    config = config_dir() / "model" / "htm.yaml"
    cfg = yaml.safe_load(config.read_text())["net"]
    cfg.pop("_target_", None)
    cfg.update(columns=columns, cells_per_column=cells)
    if tm != "bami":
        extra = yaml.safe_load(config.with_name(f"htm_{tm}.yaml").read_text())["net"]["tm"]
        cfg["tm"] = {**cfg.get("tm", {}), **extra}
    return cfg


def streams(n: int, rows: int, corpus: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(values (n, rows), timestamps (n, rows), source) from the n longest corpus files, or generated."""
    if corpus is not None:
        from brainlab.data.nab import NABDataModule

        dm = NABDataModule(str(corpus))
        dm.setup()
        chosen = sorted(dm.streams, key=lambda s: -len(s))[:n]
        if len(chosen) < n or len(chosen[-1]) < rows:
            raise SystemExit(f"the corpus has fewer than {n} files of >= {rows} rows")
        values = np.stack([s.values[:rows] for s in chosen])
        stamps = np.stack([s.timestamps[:rows].astype(np.int64) for s in chosen])
        return values, stamps, f"NAB ({corpus})"
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    values = np.stack([np.sin(2 * np.pi * t / (20 + k)) * 10 + rng.normal(0, 0.5, rows) for k in range(n)])
    stamps = np.broadcast_to(1_420_070_400 + 300 * t, (n, rows)).copy()
    return values, stamps, "generated sine + noise"


def measure(
    columns: int, cells: int, values: np.ndarray, stamps: np.ndarray, device: str, tm: str = "bami"
) -> dict[str, float]:
    net = HTM(**net_config(columns, cells, tm)).to(device)
    _ = net.encoder.table
    net.reset(values.min(1), values.max(1), values[:, 0])
    t0 = time.perf_counter()
    net(values, stamps)
    seconds = time.perf_counter() - t0
    n, rows = values.shape
    return {
        "tm": tm,
        "columns": columns,
        "cells": cells,
        "streams": n,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": n * rows / seconds,
        "segments": net.tm.n_segments,
    }


def plot(results: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for size in sorted({(r["columns"], r["cells"]) for r in results}):
        pts = sorted((r["streams"], r["rows_per_s"]) for r in results if (r["columns"], r["cells"]) == size)
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"{size[0]}x{size[1]}")
    from brainlab.bench.plots import log_axis, log_value_axis

    ax.set(xlabel="streams in lockstep", ylabel="rows/s", title="HTM streaming speed")
    log_axis(ax, "x", [r["streams"] for r in results], base=2)  # 1, 2, 4 streams, not 2x10^0
    log_value_axis(ax, "y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg = bench_config("htm", __doc__, sys.argv[1:] if argv is None else argv, legacy_flags=True)
    if cfg is None:
        return {}
    args = SimpleNamespace(
        sizes=[str(s) for s in as_list(cfg.sizes)],
        streams=[positive_int("streams[]", n) for n in as_list(cfg.streams)],
        rows=positive_int("rows", cfg.rows), corpus=Path(cfg.corpus) if cfg.corpus else None,
        tm=check_choice("tm", str(cfg.tm), ("bami", "backtracking")), device=str(cfg.device),
        threads=positive_int("threads", cfg.threads), rounds=positive_int("rounds", cfg.rounds), out=Path(cfg.out),
    )
    torch.set_num_threads(args.threads)
    points: dict[str, tuple[int, int, int]] = {}
    for size in args.sizes:
        columns, cells = (int(x) for x in size.lower().split("x"))
        for n in args.streams:
            points[f"{size} x{n}"] = (columns, cells, n)
    data = {n: streams(n, args.rows, args.corpus) for n in args.streams}
    last: dict[str, dict[str, Any]] = {}

    def point(name: str) -> float:
        columns, cells, n = points[name]
        values, stamps, _ = data[n]
        last[name] = measure(columns, cells, values, stamps, args.device, args.tm)
        return last[name]["seconds"]

    rounds = interleaved({name: functools.partial(point, name) for name in points}, rounds=args.rounds, warmup=0)
    results = []
    print("| size | streams | rows/stream | seconds (median) | min | rows/s | segments | |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, (columns, cells, n) in points.items():
        s = rounds.summary(name)
        r = {**last[name], "seconds": s["median_s"], "min_s": s["min_s"], "rows_per_s": n * args.rows / s["median_s"],
             "seconds_all": rounds.samples[name]["seconds"], "noisy": s["noisy"], "noisy_why": s["why"]}
        results.append(r)
        print(f"| {columns}x{cells} | {n} | {args.rows} | {s['median_s']:.1f} | {s['min_s']:.1f} | "
              f"{r['rows_per_s']:.0f} | {r['segments']} | {'noisy' if s['noisy'] else ''} |", flush=True)
    print(rounds.load.describe())
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "source": data[args.streams[-1]][2],
        "tm": args.tm,
        "device": args.device,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    timing = rounds.fields()
    (args.out / "htm.json").write_text(json.dumps({"meta": meta, **timing, "results": results}, indent=2))
    plot(results, args.out / "htm.png")
    return {"out": str(args.out), **timing, "results": results}


if __name__ == "__main__":
    main()
