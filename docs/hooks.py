"""mkdocs hooks: tables rendered at build time from the repository's own data, so the site cannot drift from it.

- `<!-- targets: id [id ...] -->` -> the rows of `conf/targets.yaml` (metric, target, source);
- `<!-- bench: caching -->` -> the caching x backend table of every `caching` bench JSON listed in
  `docs/results/data/runs.yaml`;
- `<!-- bench: backends -->` -> the backend speed grid of every `backends` bench JSON listed there.

A cell the JSON does not hold says `not measured`. Only the runs listed in runs.yaml are shown, each with its date,
machine, command and the machine's load as the bench recorded it (`brainlab.bench.timing`), so a number never
appears without the conditions it was measured under. A ratio or target verdict reads `noisy` where the bench marked
its figures noisy (few repeats, a wide spread, a busy machine), and wherever a run's JSON predates the load record:
without the load a ratio is not a claim.
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
BACKENDS = ("sinabs", "exodus", "fused", "fastsnn")  # the caching table's columns
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


NOISY = "noisy"


def has_load(r: dict[str, Any]) -> bool:
    """Whether the bench JSON records the machine's load (benches since the timing helper)."""
    return "load_before" in r and "noisy" in r


def load_line(r: dict[str, Any]) -> str:
    """The load the bench recorded, and why the run is noisy (or that a JSON from before the load record has none)."""
    if not has_load(r):
        return ("Load: not recorded (this JSON predates the bench's load record), so its ratios and verdicts read "
                f"`{NOISY}`.")
    before, after = r["load_before"], r["load_after"]
    if before is None or after is None:
        load = "load: not available on that OS"
    else:
        load = (f"1-minute load average {before[0]:.2f} before, {after[0]:.2f} after on {r['cores']} cores (other "
                f"processes ~{r['others_load']:.2f})")
    rounds = f"{r['rounds']} interleaved round(s)"
    verdict = f"noisy: {'; '.join(r['noisy_why'])}" if r["noisy"] else "not noisy"
    settings = r.get("speed_settings")
    shown = "; ".join(f"{k}: {v}" for k, v in settings.items()) if settings else "not recorded"
    return f"Timing: {rounds}, {load}; {verdict}. Speed settings: {shown}."


def ratio(value: float | None, noisy: bool, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return NOT_MEASURED
    return NOISY if noisy else f"{value:.{digits}f}{suffix}"


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
    known = has_load(r)
    for cache in CACHES:
        row = r["loader"].get(cache)
        if row is None:
            lines.append(f"| {cache} | {NOT_MEASURED} | {NOT_MEASURED} | {NOT_MEASURED} | "
                         + " | ".join(NOT_MEASURED for _ in BACKENDS) + " |")
            continue
        e2e = r["epoch"].get(cache, {})
        cells = [ratio(e2e.get(b, {}).get("x_floor"), not known or e2e.get(b, {}).get("noisy", True), 3)
                 for b in BACKENDS]
        speed = ratio(row.get("x_none"), not known or row.get("x_none_noisy", True), 1, "x")
        lines.append(f"| {cache} | {row['epoch_s']:.3f} | {speed} | {r['build_s'][cache]:.2f} | " + " | ".join(cells)
                     + " |")
    if "disk_bytes" in r:
        lines += ["", f"Disk cache {r['disk_bytes'] / 1e6:.1f} MB vs raw {r['raw_bytes'] / 1e6:.1f} MB "
                      f"({r['disk_bytes'] / r['raw_bytes']:.2f}x)."]
    if r.get("targets"):
        lines += ["", "| target | value | |", "|---|---|---|"]
        for goal, t in r["targets"].items():
            timed = not goal.startswith("disk cache")  # the cache's size is no timing
            noisy = timed and (not known or t.get("noisy", True))
            lines.append(f"| {goal} | {t['value']:.2f} | {NOISY if noisy else 'met' if t['met'] else 'not met'} |")
    lines += ["", load_line(r)]
    return "\n".join(lines)


def backends_tables(run: dict[str, Any]) -> str:
    """One row per case x implementation (the floor, brainlab's backends, `+event` synapses, the peers): median and
    min fwd+bwd ms, x floor, x sinabs and whether its spikes equal sinabs's."""
    r = run["json"]
    known = has_load(r)
    lines = [f"### {run['date']}: {run['title']}", "", f"`{run['command']}`", "",
             f"{run['conditions']} Device `{r['machine']['device']}`, {r['machine']['torch_threads']} torch threads, "
             f"torch {r['machine']['torch']}, median of {r['repeats']}, neuron {r['neuron']}"
             + (f", peers {', '.join(f'{k} {v}' for k, v in r['versions'].items())}" if r.get("peers") else "")
             + ".", "", load_line(r), "",
             "One training step (forward + backward), ms; its ratio to the ReLU floor and speed-up over sinabs "
             f"(`{NOISY}` where the figures cannot carry it); spikes equal to sinabs's where the neuron model matches:",
             "", "| case | row | fwd+bwd ms (median) | min | x floor | x sinabs | spikes = sinabs |",
             "|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        status = x.get("status", "ok")
        if status != "ok":
            why = f"{status}: `{x['install']}`" if x.get("install") else f"{status}: {x.get('why', '')}"
            lines.append(f"| {x['case']} | {x['backend']} | {why} | | | | n/a |")
            continue
        noisy = not known or x.get("ratios_noisy", True)
        spikes = x.get("spikes_equal", NOT_MEASURED)
        if spikes is False:
            spikes = f"false ({x.get('spike_mismatches', '?')} of {x.get('spikes_compared', '?')} differ)"
        lines.append(f"| {x['case']} | {x['backend']} | {1e3 * x['total_s']:.1f} | "
                     + (f"{1e3 * x['total_min_s']:.1f}" if "total_min_s" in x else NOT_MEASURED)
                     + f" | {ratio(x.get('x_floor_total'), noisy)} | {ratio(x.get('speedup_total'), noisy)} | "
                     f"{str(spikes).lower()} |")
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
