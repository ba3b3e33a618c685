"""The end-of-run report printed to the terminal: test metrics once, the run's own target row, the pictures.

It fits the terminal it runs in (rich's detected width; 80 columns when the output is not a terminal).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"met": "green", "not met": "red", "not measured": "dim"}


def natural_key(name: str) -> list[Any]:
    """Sort key that orders numbers inside names by value: qa2 before qa10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def test_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The `test/` metrics (per-layer rates left out: they are in the logs), in natural order."""
    keys = sorted((k for k in metrics if k.startswith("test/") and "/rate/" not in k), key=natural_key)
    return {k: metrics[k] for k in keys}


def metrics_table(tests: dict[str, float]) -> Table:
    table = Table(title="test metrics", title_justify="left")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right")
    for key, value in tests.items():
        table.add_row(key, f"{value:.4g}")
    return table


def target_rows(rows: list[dict[str, Any]], target: str | None, all_targets: bool) -> tuple[list, list]:
    """(rows to print, rows left out): the run's own row first; the others only when `all_targets`."""
    own = [r for r in rows if r["id"] == target]
    others = [r for r in rows if r["id"] != target]
    if target is None:  # no row of its own: the measured rows, if any
        own, others = [r for r in rows if r["status"] != "not measured"], [
            r for r in rows if r["status"] == "not measured"]
    return (own + others, []) if all_targets else (own, others)


def left_out_line(others: list[dict[str, Any]]) -> str:
    """`13 other targets not measured`, or with mixed statuses `3 other targets (2 not measured, 1 met)`."""
    counts: dict[str, int] = {}
    for r in others:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    head = f"{len(others)} other target{'s' if len(others) != 1 else ''}"
    if len(counts) == 1:
        return f"{head} {next(iter(counts))} (all rows in targets.md)"
    return f"{head} ({', '.join(f'{n} {s}' for s, n in counts.items())}; all rows in targets.md)"


def targets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="targets", title_justify="left")
    for col in ("id", "phase", "metric"):
        table.add_column(col, overflow="fold")
    table.add_column("target", justify="right")
    table.add_column("achieved", justify="right")
    table.add_column("status", overflow="fold")
    for r in rows:
        achieved = "–" if r["achieved"] is None else f"{r['achieved']:.4g}"
        status = r["status"] + (f" ({r['note']})" if r.get("note") else "")
        table.add_row(r["id"], str(r["phase"]), r["metric"], f"{r['target']:g}", achieved,
                      f"[{STATUS_STYLE.get(r['status'], '')}]{status}[/]")
    return table


def print_report(metrics: dict[str, float], rows: list[dict[str, Any]], output_dir: Path, target: str | None = None,
                 all_targets: bool = False, console: Console | None = None) -> None:
    """Print the test metrics (once), the target table (rows from the TargetTable callback: the run's own row
    `target` first; the other rows as a count line, or all of them with `all_targets`), the pictures written
    in `media/` and the run dir."""
    console = console or Console()
    tests = test_metrics(metrics)
    if tests:
        console.print(metrics_table(tests))
    if rows:
        shown, left_out = target_rows(rows, target, all_targets)
        if shown:
            console.print(targets_table(shown))
        if left_out:
            console.print(left_out_line(left_out), style="dim")
    pictures = sorted((output_dir / "media").glob("*.png")) if (output_dir / "media").is_dir() else []
    if pictures:
        console.print("pictures: " + ", ".join(str(p.relative_to(output_dir)) for p in pictures), soft_wrap=False)
    console.print(f"run dir: {output_dir}", soft_wrap=True)
