"""Scale bench: training throughput and peak memory of the integrated model (`experiment=brain_ai`) per preset
and batch size, through the real recipe (`train.py`, Lightning's strategy, the preset's config).

`python -m brainlab.bench scale [presets=[tiny]] [batch_sizes=[4,16]] [steps=10] [warmup=3]
[strategy=cpu|fsdp] [devices=N] [precision=P] [checkpointing=false] [workers=N] [out=DIR]` (conf/bench/scale.yaml;
the old `--flags` still work for one release, with a deprecation line)

Each (preset, batch size) is one `train.py` run in its own process (no validation, test or checkpoints) with
`StepTimer`, which times the `steps` optimizer steps after `warmup` and reads the peak memory (CUDA: the
most any GPU of the run allocated; CPU: the process's peak RSS). A run that runs out of memory is recorded as
`OOM`, not an error, so a sweep over batch sizes finds what fits. Beside each row: the parameters (counted on the
meta device) and the training state they need by arithmetic, 16 bytes a parameter (fp32 weights and grads, AdamW's
two moments; rule-learned buffers at their own size; FSDP shards it over the GPUs).
Writes `scale.json` and `scale.png` under `out`.

Timing (`brainlab.bench.timing`): `StepTimer` keeps every timed step's seconds (the loader's fetch included, CUDA
synchronised), so a row's `step_s` is the median step and `min_step_s` the fastest; `rounds` > 1 runs every
(preset, batch size) again in interleaved rounds (the order rotating), its steps pooled. A row is `noisy` with fewer
than 5 timed steps, a wide spread or a busy machine; the JSON carries the load before and after.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytorch_lightning as pl
import torch

from brainlab.bench.cli import as_list, bench_config
from brainlab.bench.timing import interleaved
from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.brain_ai.model import named_rule_buffers
from brainlab.params import build_on_meta, compose_train, count, human

ROOT = Path(__file__).resolve().parents[3]
STATE_BYTES_PER_PARAM = 16  # fp32 weight + fp32 grad + AdamW exp_avg + exp_avg_sq
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "DefaultCPUAllocator: can't allocate memory")


class StepTimer(pl.Callback):
    """Times optimizer steps `warmup+1 .. warmup+steps` one by one (synchronising CUDA; from the end of one to the end
    of the next, so the loader's fetch counts) and writes `out` (JSON) at fit end: each step's seconds, the median
    step, samples/s of it over all ranks, peak memory in GiB."""

    def __init__(self, out: str, warmup: int, steps: int) -> None:
        self.out, self.warmup, self.steps = Path(out), warmup, steps
        self.marks: list[float] = []

    @staticmethod
    def now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == self.warmup and not self.marks:
            self.marks.append(self.now())

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if self.marks and self.warmup < trainer.global_step <= self.warmup + self.steps \
                and len(self.marks) == trainer.global_step - self.warmup:
            self.marks.append(self.now())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if torch.cuda.is_available():
            peak = torch.tensor(float(torch.cuda.max_memory_allocated()), device=pl_module.device)
        else:
            peak = torch.tensor(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
        peak = float(trainer.strategy.reduce(peak, reduce_op="max"))
        if not trainer.is_global_zero:
            return
        if len(self.marks) != self.steps + 1:
            raise RuntimeError(f"the run ended before step {self.warmup + self.steps}: give it more data")
        steps = [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]
        seconds = statistics.median(steps)
        batch = trainer.datamodule.batch_size * trainer.world_size
        self.out.write_text(json.dumps({"step_s": seconds, "steps_s": steps, "samples_per_s": batch / seconds,
                                        "peak_gib": peak / 2**30, "world_size": trainer.world_size,
                                        "samples": batch}))


def training_state(preset: str) -> tuple[int, int]:
    """(parameters + rule-learned buffer elements, bytes of training state: 16 a trained parameter plus the
    rule-learned buffers at their own size, e.g. the HTM's int16 permanences), counted on the meta device."""
    net = build_on_meta(compose_train(["model=brain_ai", f"preset={preset}"]))
    trained, rule = count(net)
    rule_bytes = sum(b.numel() * b.element_size() for _, b in named_rule_buffers(net))
    return trained + rule, trained * STATE_BYTES_PER_PARAM + rule_bytes


def run_one(preset: str, batch: int, args: SimpleNamespace, work: Path, round_index: int = 0) -> dict[str, Any]:
    """One `train.py` run; its StepTimer figures, or {"status": "OOM"} / {"status": "failed", ...}."""
    name = f"{preset}_b{batch}" + (f"_r{round_index}" if round_index else "")
    result_file = work / f"{name}.json"
    total_steps = args.warmup + args.steps
    per_class = math.ceil(total_steps * batch * args.devices / 4) + 1
    overrides = [
        "experiment=brain_ai", f"preset={preset}", f"trainer={args.trainer}", f"scale.batch_size={batch}",
        f"trainer.max_steps={total_steps}", "trainer.max_epochs=-1", "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0", "test=false", "trainer.enable_model_summary=false",
        f"data.samples_per_class={per_class}", f"data.num_workers={args.workers}",
        "callbacks.model_checkpoint=null", "callbacks.step_checkpoint=null", "callbacks.progress_bar=null",
        "callbacks.spike_stats=null", "callbacks.lr_monitor=null", "callbacks.target_table=null",
        f"+callbacks.step_timer._target_={__name__}.StepTimer", f"+callbacks.step_timer.out={result_file}",
        f"+callbacks.step_timer.warmup={args.warmup}", f"+callbacks.step_timer.steps={args.steps}",
        f"paths.output_dir={work / name}", f"hydra.run.dir={work / name}",
    ]
    if args.precision:
        overrides.append(f"trainer.precision={args.precision}")
    if args.trainer == "fsdp":
        overrides.append(f"trainer.devices={args.devices}")
        if args.no_checkpointing:
            overrides.append("trainer.strategy.activation_checkpointing_policy=null")
    done = subprocess.run([sys.executable, "train.py", *overrides], cwd=ROOT, capture_output=True, text=True)
    if result_file.is_file():
        return {"status": "ok", **json.loads(result_file.read_text())}
    output = done.stdout + done.stderr
    if any(marker in output for marker in OOM_MARKERS):
        return {"status": "OOM"}
    if done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return {"status": "OOM", "error": "killed by SIGKILL (the kernel's out-of-memory killer, most likely)"}
    return {"status": "failed", "error": error_line(output) or f"exit status {done.returncode}"}


def error_line(output: str) -> str:
    """The line of a failed run's output that says why (brainlab's `error: ...`, else the last exception)."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
    for wanted in (lambda line: line.startswith("error:"), lambda line: "Error" in line):
        found = [line for line in lines if wanted(line)]
        if found:
            return found[-1]
    return lines[-1] if lines else ""


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| preset | params | training state (GiB) | batch | samples/s | s/step (median) | min | peak memory (GiB) "
             "| |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ok = r["status"] == "ok"
        figures = (f"{r['samples_per_s']:.2f} | {r['step_s']:.3f} | {r['min_step_s']:.3f} | {r['peak_gib']:.2f} | "
                   f"{'noisy' if r['noisy'] else ''}" if ok else f"{r['status']} | – | – | – |")
        lines.append(f"| {r['preset']} | {human(r['params'])} | {r['state_gib']:.2f} | {r['batch']} | {figures} |")
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for preset in dict.fromkeys(r["preset"] for r in rows):
        ok = [r for r in rows if r["preset"] == preset and r["status"] == "ok"]
        if ok:
            left.plot([r["batch"] for r in ok], [r["samples_per_s"] for r in ok], "o-", label=preset)
            right.plot([r["batch"] for r in ok], [r["peak_gib"] for r in ok], "o-", label=preset)
    from brainlab.bench.plots import log_axis

    for ax, label in ((left, "samples/s"), (right, "peak memory (GiB)")):
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        log_axis(ax, "x", [r["batch"] for r in rows], base=2)  # the measured batch sizes, as plain numbers
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: the old flags whose key changed (`trainer` is a config group, so the key is `strategy`)
RENAMED_FLAGS = {"--trainer": "strategy", "--no-checkpointing": "checkpointing=false"}


def parse(argv: Sequence[str]) -> SimpleNamespace | None:
    """The bench's settings from `key=value` overrides of conf/bench/scale.yaml (None after `--help`)."""
    cfg = bench_config("scale", __doc__, argv, legacy_flags=True, renames=RENAMED_FLAGS)
    if cfg is None:
        return None
    gpu = torch.cuda.is_available()
    auto = "fsdp" if gpu else "cpu"
    trainer = check_choice("strategy", auto if cfg.strategy == "auto" else str(cfg.strategy), ("cpu", "fsdp"))
    args = SimpleNamespace(
        presets=[str(p) for p in as_list(cfg.presets)],
        batch_sizes=[positive_int("batch_sizes[]", b) for b in as_list(cfg.batch_sizes)],
        steps=positive_int("steps", cfg.steps), warmup=int(cfg.warmup), trainer=trainer,
        rounds=positive_int("rounds", cfg.rounds),
        devices=positive_int("devices", cfg.devices),
        precision=("bf16-mixed" if gpu else None) if cfg.precision == "auto" else cfg.precision,
        no_checkpointing=not cfg.checkpointing,
        workers=(4 if gpu else 0) if cfg.workers == "auto" else int(cfg.workers), out=Path(cfg.out),
    )
    if args.warmup < 0:
        raise ConfigError(f"warmup={args.warmup} must be >= 0")
    if args.trainer == "cpu" and args.devices != 1:
        raise ConfigError("devices applies to strategy=fsdp (with strategy=cpu leave devices=1)")
    return args


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = parse(argv)
    if args is None:
        return {}
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir()
    states = {preset: training_state(preset) for preset in args.presets}
    points = {f"{preset} b{batch}": (preset, batch) for preset in args.presets for batch in args.batch_sizes}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in points}

    def point(name: str) -> dict[str, list[float]]:
        preset, batch = points[name]
        got = run_one(preset, batch, args, work, len(runs[name]))
        runs[name].append(got)
        print(f"[{name}, round {len(runs[name])}] {got['status']}", flush=True)
        return {"step_s": got.get("steps_s", [])}

    rounds = interleaved({name: functools.partial(point, name) for name in points}, rounds=args.rounds, warmup=0)
    rows = []
    for name, (preset, batch) in points.items():
        n, state = states[preset]
        done = runs[name]
        failed = next((r for r in done if r["status"] != "ok"), None)
        row = {"preset": preset, "params": n, "state_gib": state / 2**30, **(failed or done[-1]), "batch": batch}
        if failed is None:  # every round's steps pooled: the median step, the fastest, the most memory any run took
            s = rounds.summary(name, "step_s")
            row.update(step_s=s["median_s"], min_step_s=s["min_s"], samples_per_s=done[-1]["samples"] / s["median_s"],
                       steps_s=rounds.samples[name]["step_s"], peak_gib=max(r["peak_gib"] for r in done),
                       noisy=s["noisy"], noisy_why=s["why"])
        rows.append(row)
    cpu = f"CPU {platform.machine()}, {os.cpu_count()} cores"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu
    checkpointing = args.trainer == "fsdp" and not args.no_checkpointing
    result = {"out": str(args.out), "device": device, "trainer": args.trainer, "devices": args.devices,
              "precision": args.precision, "activation_checkpointing": checkpointing,
              "steps": args.steps, "warmup": args.warmup, **rounds.fields(), "rows": rows}
    (args.out / "scale.json").write_text(json.dumps(result, indent=2))
    plot(rows, args.out / "scale.png")
    print(f"\n{device}, trainer={args.trainer} x{args.devices}, precision={args.precision or '32-true'}\n")
    print(format_rows(rows))
    print(rounds.load.describe())
    return result
