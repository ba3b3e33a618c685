"""mkdocs hooks: tables rendered at build time from the repository's own data, so the site cannot drift from it.

- `<!-- targets: id [id ...] -->` -> the rows of `conf/targets.yaml` (metric, target, source);
- `<!-- bench: caching -->` -> the caching x backend table of every `caching` bench JSON listed in
  `docs/results/data/runs.yaml`;
- `<!-- bench: backends -->` -> the backend speed grid of every `backends` bench JSON listed there.

A cell the JSON does not hold says `not measured`. Only the runs listed in runs.yaml are shown, each with its date,
machine and command, so a number never appears without the conditions it was measured under.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "results" / "data"
NOT_MEASURED = "not measured"
CACHES = ("none", "disk", "memory", "gpu")
BACKENDS = ("sinabs", "exodus", "fused", "fastsnn")
PLACEHOLDER = re.compile(r"<!--\s*(targets|bench):\s*([^>]*?)\s*-->")


def targets_table(ids: list[str]) -> str:
    rows = yaml.safe_load((ROOT / "conf" / "targets.yaml").read_text())["targets"]
    lines = ["| row | phase | metric | target | source |", "|---|---|---|---|---|"]
    for key in ids:
        if key not in rows:
            raise KeyError(f"docs: target row {key!r} is not in conf/targets.yaml")
        r = rows[key]
        better = ">=" if r.get("mode", "max") == "max" else "<="
        lines.append(f"| `{key}` | {r['phase']} | `{r['metric']}` | {better} {r['value']:g} | {r.get('source', '')} |")
    return "\n".join(lines)


def runs(kind: str) -> list[dict[str, Any]]:
    listed = yaml.safe_load((DATA / "runs.yaml").read_text()) or []
    out = []
    for run in listed:
        if run["bench"] == kind:
            out.append({**run, "json": json.loads((DATA / run["file"]).read_text())})
    return out


def _s(value: float | None, digits: int = 2) -> str:
    return NOT_MEASURED if value is None else f"{value:.{digits}f}"


def caching_tables(run: dict[str, Any]) -> str:
    r = run["json"]
    setup = r["setup"]
    lines = [f"### {run['date']}: {run['title']}", "", f"`{run['command']}`", "",
             f"{run['conditions']} Setup: {setup['samples']} samples, batch {setup['batch_size']}, "
             f"{setup['workers']} workers, {setup['epochs']} epoch(s), device `{r['machine']['device']}`, "
             f"{r['machine']['threads']} torch threads, torch {r['machine']['torch']}.", "",
             "End-to-end training epoch, seconds (the blog's table: cache x backend):", "",
             "| cache | " + " | ".join(BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    for cache in CACHES:
        cells = [_s(r["epoch"].get(cache, {}).get(b, {}).get("epoch_s")) for b in BACKENDS]
        lines.append(f"| {cache} | " + " | ".join(cells) + " |")
    lines += ["", "Loader alone and the compute-only floor:", "",
              "| cache | loader epoch s | x vs none | build s | "
              + " | ".join(f"e2e/floor {b}" for b in BACKENDS) + " |",
              "|---|---|---|---|" + "---|" * len(BACKENDS)]
    for cache in CACHES:
        row = r["loader"].get(cache)
        if row is None:
            lines.append(f"| {cache} | {NOT_MEASURED} | {NOT_MEASURED} | {NOT_MEASURED} | "
                         + " | ".join(NOT_MEASURED for _ in BACKENDS) + " |")
            continue
        ratio = [_s(r["epoch"].get(cache, {}).get(b, {}).get("x_floor"), 3) for b in BACKENDS]
        speed = f"{row['x_none']:.1f}x" if row.get("x_none") else NOT_MEASURED
        lines.append(f"| {cache} | {row['epoch_s']:.3f} | {speed} | {r['build_s'][cache]:.2f} | " + " | ".join(ratio)
                     + " |")
    if "disk_bytes" in r:
        lines += ["", f"Disk cache {r['disk_bytes'] / 1e6:.1f} MB vs raw {r['raw_bytes'] / 1e6:.1f} MB "
                      f"({r['disk_bytes'] / r['raw_bytes']:.2f}x)."]
    if r.get("targets"):
        lines += ["", "| target | value | |", "|---|---|---|"]
        for goal, t in r["targets"].items():
            lines.append(f"| {goal} | {t['value']:.2f} | {'met' if t['met'] else 'not met'} |")
    return "\n".join(lines)


def backends_tables(run: dict[str, Any]) -> str:
    r = run["json"]
    rows = r["rows"]
    names = ["floor", *BACKENDS]
    lines = [f"### {run['date']}: {run['title']}", "", f"`{run['command']}`", "",
             f"{run['conditions']} Device `{r['machine']['device']}`, {r['machine']['torch_threads']} torch threads, "
             f"torch {r['machine']['torch']}, median of {r['repeats']}, neuron {r['neuron']}.", "",
             "Forward + backward (one training step), ms, and speed-up over sinabs:", "",
             "| case | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for case in dict.fromkeys(x["case"] for x in rows):
        mine = {x["backend"]: x for x in rows if x["case"] == case}
        cells = []
        for b in names:
            x = mine.get(b)
            if x is None:
                cells.append(NOT_MEASURED)
            elif "speedup_total" in x:
                cells.append(f"{1e3 * x['total_s']:.1f} ({x['speedup_total']:.2f}x)")
            else:
                cells.append(f"{1e3 * x['total_s']:.1f}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += ["", "Ratio to the ReLU floor (fwd+bwd):", "", "| case | " + " | ".join(BACKENDS) + " |",
              "|---|" + "---|" * len(BACKENDS)]
    for case in dict.fromkeys(x["case"] for x in rows):
        mine = {x["backend"]: x for x in rows if x["case"] == case}
        cells = [_s(mine[b].get("x_floor_total")) if b in mine else NOT_MEASURED for b in BACKENDS]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_section(kind: str) -> str:
    render = {"caching": caching_tables, "backends": backends_tables}[kind]
    found = runs(kind)
    if not found:
        return f"No `{kind}` bench JSON is committed yet: every figure is {NOT_MEASURED}."
    return "\n\n".join(render(run) for run in found)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def sub(match: re.Match) -> str:
        kind, arg = match.group(1), match.group(2)
        if kind == "targets":
            return targets_table(arg.split())
        return bench_section(arg.strip())

    return PLACEHOLDER.sub(sub, markdown)
