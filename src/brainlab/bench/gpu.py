"""`brainlab bench gpu`: the one short GPU check, under 5 minutes on one CUDA GPU.

    python -m brainlab.bench gpu                     # on a CUDA machine: every step, results into docs/results/
    python -m brainlab.bench gpu dry_run=true        # any machine: list the steps, their commands and timeouts
    python -m brainlab.bench gpu only=[pytest_gpu]   # a subset

Steps (`conf/bench/gpu.yaml`), in order, each a subprocess with its own timeout (never more than what is left of
`budget_s`): `pytest -m gpu` over the test files that hold gpu-marked tests; the backends bench, fused (its Triton
kernels: `backend.kernel=auto` on CUDA) vs sinabs (and exodus when installed), on the blog model and on the
open-neuromorphic benchmark's Linear 16k + LIF, T=500, batch 16; the loading bench with `cache=gpu` (and memory)
on a generated SSC-shaped set; a few steps of the 1b preset under FSDP in bf16 with peak memory (the scale bench).
After each step `gpu_check_<date>.md` under `out` and its JSON under `out/data/` are rewritten: date, device,
versions, and per step its status (passed, failed, timed out, skipped and why), seconds, command, what the step
itself skipped (its `[skip ...]` lines), the output's tail and the numbers of the JSON it wrote. The steps run once
each through `brainlab.bench.timing` (one round, in order), so the record carries the machine's load before and
after and every step's seconds; those are single runs (`noisy` by rule) kept as what the check cost, while the
figures to read are the steps' own bench JSON, each with its own rounds, load and `noisy`.

The device machine of this workplace has Python 3.12, torch 2.11, Triton 3.6 and (among others) numba, h5py,
scipy, matplotlib, pytest, pytorch-lightning, torchmetrics, tensorboard and rich, and no downloads. What these
steps import beyond that (traced with `python -X importtime` over each step's CPU twin) travels as 9 pure-Python
wheels, about 0.9 MiB: hydra-core 1.3.8, omegaconf 2.3.1, antlr4-python3-runtime 4.9.3 (an sdist on PyPI: `pip wheel`
it here), sinabs 3.1.3, nir 1.0.4, nirtorch 2.0.2, tonic 1.7.0, importRosbag 1.0.4, pbr 7.1.3, installed there with
`--no-deps` (sinabs's samna and tonic's librosa / expelliarmus are not imported on these paths). sinabs-exodus is
not carried: it is an sdist built with nvcc against the installed torch (not tried there, and not inside the five
minutes), so the backends steps record exodus as skipped with the real import error. The commands are in
docs/results/gpu_check.md; then, from the repo root there, `PYTHONPATH=/tmp/site:src python3 -m brainlab.bench gpu`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brainlab.bench.cli import as_list, bench_config
from brainlab.bench.timing import Load, interleaved
from brainlab.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
TAIL = 3000  # characters of a step's output kept in the JSON
RUNS = ("pytest", "backends", "loading", "scale")


def gpu_test_files(root: Path = ROOT) -> list[str]:
    """The test files holding gpu-marked tests (collecting only these keeps an optional package of an unrelated
    test module from failing the step)."""
    marked = re.compile(r"pytest\.mark\.gpu|pytestmark\s*=.*gpu")
    return sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py") if marked.search(p.read_text()))


def command(step: DictConfig, work: Path) -> list[str]:
    """The step's argv: pytest over the gpu test files, or a bench with its own out folder."""
    run, args = str(step.run), [str(a) for a in step.get("args", [])]
    if run not in RUNS:
        raise ConfigError(f"step {step.name}: run={run!r} is not one of {', '.join(RUNS)}")
    if run == "pytest":
        return [sys.executable, "-m", "pytest", *args, *gpu_test_files()]
    return [sys.executable, "-m", "brainlab.bench", run, *args, f"out={work / str(step.name)}"]


def plan(cfg: DictConfig) -> list[DictConfig]:
    """The steps to run, in order (`only` picks a subset by name; an unknown name is refused)."""
    steps = list(cfg.steps)
    names = [str(s.name) for s in steps]
    only = [str(n) for n in as_list(cfg.only)] if cfg.only else []
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ConfigError(f"only={unknown}: no such step; steps: {', '.join(names)}")
    return [s for s in steps if not only or str(s.name) in only]


def machine() -> dict[str, Any]:
    """Date, device and versions for the record."""
    import torch

    info: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)",
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError as err:
        info["triton"] = f"not installed ({err})"
    return info


def run_step(argv: list[str], timeout: float) -> tuple[str, int | None, float, str]:
    """(status, return code, seconds, output) of one step in its own process group (killed whole on timeout)."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = "passed" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        status = "timed out"
    return status, proc.returncode, time.perf_counter() - start, out or ""


def step_numbers(folder: Path) -> dict[str, Any]:
    """The JSON files a bench step wrote (its numbers), by file name."""
    found = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            found[str(path.relative_to(folder))] = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            found[str(path.relative_to(folder))] = f"unreadable: {err}"
    return found


def markdown(record: dict[str, Any]) -> str:
    m = record["machine"]
    load = Load.from_fields(record).describe() if "load_before" in record else "load: not recorded"
    lines = [f"# GPU check, {m['date'][:10]}", "",
             f"Device: {m['device']}; torch {m['torch']} (CUDA {m['cuda']}), Triton {m['triton']}, "
             f"Python {m['python']}. Written by `python -m brainlab.bench gpu` ({record['seconds']:.0f} s of "
             f"{record['budget_s']} s); {load}.", "",
             "| step | status | seconds | skipped inside the step |", "|---|---|---|---|"]
    for s in record["steps"]:
        lines.append(f"| {s['name']} | {s['status']} | {s.get('seconds', 0):.0f} | "
                     f"{'; '.join(s.get('skipped', [])) or s.get('why') or '-'} |")
    for s in record["steps"]:
        rows = [r for doc in s.get("numbers", {}).values() if isinstance(doc, dict) for r in doc.get("rows", [])]
        if s["name"].startswith("backends") and rows:
            lines += ["", f"## {s['name']}", "", "| case | backend | forward s | forward+backward s | |",
                      "|---|---|---|---|---|"]
            lines += [f"| {r['case']} | {r['backend']} | {r['forward_s']:.4f} | {r['total_s']:.4f} | "
                      f"{'noisy' if r.get('noisy') else ''} |" if r.get("status", "ok") == "ok" else
                      f"| {r['case']} | {r['backend']} | {r['status']} | {r.get('why', '')} | |" for r in rows]
        elif rows:
            lines += ["", f"## {s['name']}", "", "```json", json.dumps(rows, indent=1)[:4000], "```"]
        if s["status"] != "passed":
            lines += ["", f"## {s['name']}: {s['status']}", "", "```", s.get("tail", "")[-1500:], "```"]
    return "\n".join(lines) + "\n"


def write(record: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """`out/gpu_check_<date>.md` and its JSON in `out/data/` (where the docs keep bench JSON)."""
    name = f"gpu_check_{record['machine']['date'][:10]}"
    (out / "data").mkdir(parents=True, exist_ok=True)
    data, page = out / "data" / f"{name}.json", out / f"{name}.md"
    data.write_text(json.dumps(record, indent=2, default=str))
    page.write_text(markdown(record))
    return data, page


def run(cfg: DictConfig) -> dict[str, Any]:
    steps = plan(cfg)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(str(cfg.work)) / stamp
    if cfg.dry_run:
        print(f"bench gpu: {len(steps)} steps, budget {cfg.budget_s} s (dry run: nothing runs)")
        listed = []
        for i, step in enumerate(steps, 1):
            argv = command(step, work)
            listed.append({"name": str(step.name), "timeout_s": int(step.timeout_s), "command": argv})
            print(f"{i}. {step.name} (timeout {int(step.timeout_s)} s): python {' '.join(argv[1:])}")
        return {"dry_run": True, "steps": listed}
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("bench gpu needs a CUDA device (torch sees none here); dry_run=true lists the steps")
    record: dict[str, Any] = {"machine": machine(), "budget_s": int(cfg.budget_s), "work": str(work), "steps": []}
    deadline = time.perf_counter() + float(cfg.budget_s)
    start = time.perf_counter()
    out = Path(str(cfg.out))
    paths = [out / "data" / "gpu_check.json", out / "gpu_check.md"]

    def run_one(step: DictConfig) -> float:
        argv = command(step, work)
        entry: dict[str, Any] = {"name": str(step.name), "command": argv[1:], "timeout_s": int(step.timeout_s)}
        left = deadline - time.perf_counter()
        seconds = 0.0
        if left < 5:
            entry.update(status="skipped", why=f"the budget of {cfg.budget_s} s was spent by the steps before")
        else:
            print(f"[{step.name}] {' '.join(argv[1:])}", flush=True)
            status, rc, seconds, text = run_step(argv, min(float(step.timeout_s), left))
            entry.update(status=status, returncode=rc, seconds=round(seconds, 1), tail=text[-TAIL:],
                         skipped=sorted(set(re.findall(r"^\[skip [^\]]+\] .*$", text, re.MULTILINE))),
                         numbers=step_numbers(work / str(step.name)))
            print(f"[{step.name}] {status} in {seconds:.0f} s", flush=True)
        record["steps"].append(entry)
        record["seconds"] = round(time.perf_counter() - start, 1)
        paths[:] = write(record, out)
        return seconds

    # one round, the steps in their order (round 0 does not rotate); the record then carries the load around them
    rounds = interleaved({str(step.name): functools.partial(run_one, step) for step in steps}, rounds=1, warmup=0)
    record.update(rounds.fields())
    paths[:] = write(record, out)
    print(rounds.load.describe())
    print(f"wrote {paths[0]} and {paths[1]}")
    record["out"] = str(out)
    return record


def load_config(overrides: list[str]) -> DictConfig:
    from brainlab.core.paths import compose_config

    return compose_config("bench/gpu", overrides, "bench gpu")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m brainlab.bench gpu [key=value ...]`; `--help` prints the config and its keys."""
    cfg = bench_config("gpu", __doc__, sys.argv[1:] if argv is None else argv, load_config)
    if cfg is None:
        return {}
    OmegaConf.resolve(cfg)
    return run(cfg)


if __name__ == "__main__":
    main()
