"""Spike counts and accuracy, FastSNN vs a standard SNN (the FastSNN paper's ~96%-fewer-spikes result).

    python -m brainlab.bench.spike_counts                         # synthetic set, conf/bench/spike_counts.yaml
    python -m brainlab.bench.spike_counts 'extra=["trainer.max_epochs=2","data.samples_per_class=20"]'

Trains the same net once per backend through `brainlab.train.run` (one run dir each, under the bench's
folder) and reads spikes per sample per spiking layer from the run's test-time firing rates
(`test/rate/<layer>` = spikes / (samples x T x neurons), logged by the SpikeStats callback):
spikes per sample = rate x T x neurons. Prints a table and writes `spike_counts.json` + `spike_counts.png`.

The counts are the figures here, not times: each training run's wall seconds are kept beside them only as what
they are, one run each through `brainlab.bench.timing` (always `noisy`: one repeat), with the machine's load.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import platform
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from brainlab.bench.cli import bench_config
from brainlab.bench.timing import interleaved
from brainlab.core.paths import compose_config


def load_config(overrides: list[str]) -> DictConfig:
    """`conf/bench/spike_counts.yaml` with Hydra overrides applied; a bad override is one ConfigError."""
    return compose_config("bench/spike_counts", overrides, "bench spike_counts")


def train_one(overrides: list[str], run_dir: Path) -> tuple[dict[str, float], DictConfig]:
    """Compose conf/train.yaml with `overrides`, train and test; return the metrics and the config."""
    from brainlab.train import run

    cfg = compose_config("train", [*overrides, f"paths.output_dir={run_dir}"])
    return run(cfg), cfg


def spikes_per_sample(metrics: dict[str, float], cfg: DictConfig) -> dict[str, float]:
    """Per spiking layer: test firing rate x time steps x neurons (hidden layers are `hidden_dim` wide)."""
    steps, width = int(cfg.data.n_time_bins), int(cfg.model.net.hidden_dim)
    prefix = "test/rate/"
    return {k[len(prefix):]: v * steps * width for k, v in sorted(metrics.items())
            if k.startswith(prefix) and k != prefix + "mean"}


def print_table(rows: list[dict[str, Any]]) -> None:
    layers = sorted({name for r in rows for name in r["spikes_per_sample"]})
    header = f"{'backend':<10}{'test acc':>10}" + "".join(f"{name:>18}" for name in layers) + f"{'total':>12}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        cells = "".join(f"{r['spikes_per_sample'].get(n, float('nan')):>18.1f}" for n in layers)
        print(f"{r['backend']:<10}{r['test_acc']:>10.3f}{cells}{r['total_spikes_per_sample']:>12.1f}")


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sorted({name for r in rows for name in r["spikes_per_sample"]})
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(layers) * len(rows) / 2, 3.6))
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(layers))]
        bars = ax.bar(xs, [r["spikes_per_sample"].get(n, 0.0) for n in layers], width,
                      label=f"{r['backend']} (test acc {r['test_acc']:.3f})")
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(layers))], layers)
    ax.set_ylabel("spikes per sample")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_bench(cfg: DictConfig) -> dict[str, Any]:
    """Train per backend, collect counts and accuracy, write JSON + PNG into a new folder under `cfg.out`."""
    out = Path(cfg.out) / f"spike_counts-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    common = [*map(str, cfg.train), *map(str, cfg.extra), f"seed={int(cfg.seed)}"]
    trained: dict[str, tuple[dict[str, float], DictConfig]] = {}

    def train(backend: str) -> None:  # timed by the helper: one run, train and test
        trained[backend] = train_one([*common, *map(str, cfg.backends[backend])], out / backend)

    rounds = interleaved({str(b): functools.partial(train, str(b)) for b in cfg.backends}, rounds=1, warmup=0)
    rows: list[dict[str, Any]] = []
    for backend, extra in cfg.backends.items():
        metrics, run_cfg = trained[str(backend)]
        counts = spikes_per_sample(metrics, run_cfg)
        timed = rounds.summary(str(backend))
        rows.append({
            "backend": str(backend), "overrides": [*common, *map(str, extra)],
            "test_acc": metrics.get("test/acc", float("nan")), "spikes_per_sample": counts,
            "total_spikes_per_sample": sum(counts.values()), "data": str(run_cfg.data._target_),
            "n_time_bins": int(run_cfg.data.n_time_bins), "hidden_dim": int(run_cfg.model.net.hidden_dim),
            "run_s": timed["median_s"], "min_run_s": timed["min_s"], "noisy": timed["noisy"],
        })
    ref = next((r for r in rows if r["backend"] != "fastsnn"), None)
    fast = next((r for r in rows if r["backend"] == "fastsnn"), None)
    if ref and fast and ref["total_spikes_per_sample"] > 0:
        ratio = fast["total_spikes_per_sample"] / ref["total_spikes_per_sample"]
        fast["spike_reduction_vs_" + ref["backend"]] = 1 - ratio
    data = rows[0]["data"].rsplit(".", 1)[-1].removesuffix("DataModule") if rows else "?"
    record = {"machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
              "data": data, **rounds.fields(), "rows": rows, "out": str(out)}
    title = f"spikes per sample per layer ({data})"
    record["png"] = str(plot(rows, out / "spike_counts.png", title))
    (out / "spike_counts.json").write_text(json.dumps(record, indent=2))
    print(f"\n{title}")
    print_table(rows)
    if fast and ref and "spike_reduction_vs_" + ref["backend"] in fast:
        print(f"fastsnn: {100 * fast['spike_reduction_vs_' + ref['backend']]:.1f}% fewer spikes than {ref['backend']}")
    print(f"wrote {out / 'spike_counts.json'} {record['png']}")
    return record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m brainlab.bench.spike_counts [key=value ...]`; `--help` prints the config."""
    cfg = bench_config("spike_counts", __doc__, sys.argv[1:] if argv is None else argv, load_config)
    return {} if cfg is None else run_bench(cfg)


if __name__ == "__main__":
    main()
