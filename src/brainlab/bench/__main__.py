"""`python -m brainlab.bench <name> [--wandb] [options]`: run one benchmark.

Benches: `loading` (= `caching`), `backends` (`peers=true`: with snntorch, norse, spikingjelly), `spikes` (FastSNN
spike counts), `htm` (HTM rows/s), `scale` (the integrated model's samples/s and peak memory per preset and batch
size), `event_step` (the blog model's training step, fused with each synapse, against the floor), `gpu` (the one
short GPU check: `pytest -m gpu` and the GPU runs of the others, each step with its own timeout; `dry_run=true`
lists them). Every timing goes through `brainlab.bench.timing`: interleaved rounds, median and min, the machine's
load before and after in the JSON, and `noisy` printed in place of a ratio or verdict the figures cannot carry.

Each bench takes Hydra overrides of its `conf/bench/<name>.yaml` (`loading`: `samples=2048 backends=[fused]`);
`--help` prints a bench's keys.

`--wandb` also logs the figures the bench wrote (and its JSON as a table) to a W&B run, offline unless
WANDB_MODE says otherwise, so they sit beside the training runs on the dashboard.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

from brainlab.core.errors import BrainlabError

BENCHES = {"loading": "caching", "caching": "caching", "backends": "backends", "spikes": "spike_counts", "htm": "htm",
           "scale": "scale", "event_step": "event_step", "gpu": "gpu"}
DEFAULT_OUT = {
    "caching": "outputs/bench/caching", "backends": "outputs/bench", "spike_counts": "outputs/bench",
    "htm": "outputs/bench/htm", "scale": "outputs/bench/scale", "event_step": "outputs/bench/event_step",
    "gpu": "docs/results",
}


def out_dir(module: str, argv: list[str]) -> Path:
    """The bench's output folder from `out=...` (or `--out ...`), else its default."""
    for arg in argv:
        if arg.startswith("out="):
            return Path(arg.split("=", 1)[1])
    return Path(argv[argv.index("--out") + 1]) if "--out" in argv[:-1] else Path(DEFAULT_OUT[module])


def log_to_wandb(name: str, files: list[Path], save_dir: Path) -> None:
    """The bench's PNGs as W&B images and its JSON files as artifacts-in-files, in one W&B run."""
    import wandb

    run = wandb.init(project="brainlab-bench", name=name, job_type="bench", dir=str(save_dir),
                     mode=os.environ.get("WANDB_MODE", "offline"))
    try:
        images = {f"bench/{p.stem}": wandb.Image(str(p)) for p in files if p.suffix == ".png"}
        for path in (p for p in files if p.suffix == ".json"):
            run.summary[f"bench/{path.stem}"] = json.loads(path.read_text(), parse_constant=lambda _: None)
        run.log(images)
    finally:
        wandb.finish()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m brainlab.bench {{{'|'.join(BENCHES)}}} [--wandb] [options] (--help for a bench's)",
              file=sys.stderr)
        return 2
    module = BENCHES[argv[0]]
    args = [a for a in argv[1:] if a != "--wandb"]
    start = time.time()
    try:
        result = importlib.import_module(f"brainlab.bench.{module}").main(args)
    except BrainlabError as exc:  # a bad option or input: its one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "--wandb" in argv:
        out = Path(result["out"]) if isinstance(result, dict) and "out" in result else out_dir(module, args)
        files = [p for p in out.rglob("*") if p.suffix in {".png", ".json"} and p.stat().st_mtime >= start]
        log_to_wandb(f"{module}-{time.strftime('%Y%m%d-%H%M%S')}", files, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
