"""The end-of-run report: fits the terminal, prints each metric once in natural order, own target row first."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from rich.console import Console

from brainlab.loggers import hide_lightning_tips
from brainlab.report import natural_key, print_report


def row(key: str, achieved: float | None = None, status: str = "not measured", note: str = "") -> dict[str, Any]:
    return {"id": key, "phase": 6, "metric": "test/mean_acc", "target": 0.95, "achieved": achieved, "gap": None,
            "status": status, "note": note, "source": "Weston et al. 2015"}


def report(tmp_path: Path, width: int, **kw: Any) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    metrics = {f"test/acc/qa{t}": 0.5 + t / 100 for t in range(1, 21)}
    metrics.update({"test/mean_acc": 0.61234567, "test/rate/net.layers.1": 0.1, "val/acc": 0.4})
    rows = [row(f"other_{i}") for i in range(13)]
    rows.insert(7, row("babi", 0.61234567, "not measured", "not the full dataset"))
    (tmp_path / "media").mkdir(exist_ok=True)
    (tmp_path / "media" / "raster.png").write_bytes(b"")
    print_report(metrics, rows, tmp_path, console=console, **{"target": "babi", **kw})
    return console.export_text()


def test_report_fits_80_columns_once_per_metric_own_row_first(tmp_path: Path) -> None:
    text = report(tmp_path, 80)
    lines = text.splitlines()
    # the run dir stays one line, whole, to copy (the terminal wraps it): its length is tmp_path's, not the report's
    assert f"run dir: {tmp_path}" in lines
    assert max(len(line) for line in lines if not line.startswith("run dir: ")) <= 80, "the rest fits the terminal"
    assert sum(line.startswith("│ test/mean_acc ") for line in lines) == 1, "each metric printed once"
    assert "rate/" not in text and "val/acc" not in text
    tasks = [line.split()[1] for line in lines if "test/acc/qa" in line]
    assert tasks == [f"test/acc/qa{t}" for t in range(1, 21)], "qa2 before qa10"
    assert "babi" in text and "other_0" not in text
    assert "13 other targets not measured" in text
    assert "not measured (not the" in text and "full dataset)" in text, "the own row's note, folded to fit"
    assert "pictures: media/raster.png" in text


def test_report_lists_every_row_when_asked_and_uses_a_wide_terminal(tmp_path: Path) -> None:
    text = report(tmp_path, 160, all_targets=True)
    table = text[text.index("targets"):].splitlines()
    ids = [line.split()[1] for line in table if line.startswith("│ ") and line.split()[1] != "│"]
    assert ids[0] == "babi" and len(ids) == 14, "own row first, then the 13 others"
    assert "other targets" not in text
    assert max(len(line) for line in text.splitlines()) <= 160


def test_natural_order() -> None:
    assert sorted(["qa10", "qa2", "qa1", "b", "a3"], key=natural_key) == ["a3", "b", "qa1", "qa2", "qa10"]


def test_lightning_tips_are_hidden(caplog) -> None:  # noqa: ANN001
    hide_lightning_tips()
    hide_lightning_tips()  # idempotent
    log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
        log.info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
    assert len(log.filters) == 1


def test_report_takes_the_terminal_width(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("COLUMNS", "60")
    rows = [row("babi", 0.5, "not met"), row("shd")]
    print_report({"test/mean_acc": 0.5, "test/synops": 123456.0}, rows, tmp_path, target="babi")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines() if "run dir" not in line) <= 60
    assert "1 other target not measured" in out
