"""The end-of-run report printed to the terminal: test metrics and the target table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"met": "green", "not met": "red", "not measured": "dim"}


def print_report(metrics: dict[str, float], rows: list[dict[str, Any]], output_dir: Path) -> None:
    """Print the test metrics and the target table (rows from the TargetTable callback)."""
    console = Console(width=max(120, Console().width))
    tests = {k: v for k, v in sorted(metrics.items()) if k.startswith("test/") and "/rate/" not in k}
    for key, value in tests.items():
        console.print(f"{key}: {value:.4f}")
    if rows:
        table = Table(title="targets")
        for col in ("id", "phase", "metric", "target", "achieved", "status"):
            table.add_column(col)
        for r in rows:
            achieved = "–" if r["achieved"] is None else f"{r['achieved']:.4g}"
            status = r["status"] + (f" ({r['note']})" if r["note"] else "")
            table.add_row(r["id"], str(r["phase"]), r["metric"], f"{r['target']:g}", achieved,
                          f"[{STATUS_STYLE[r['status']]}]{status}[/]")
        console.print(table)
    console.print(f"run dir: {output_dir}")
