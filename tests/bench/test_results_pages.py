"""The results pages render bench JSON with the load it was taken under: ratios and verdicts read `noisy` where the
bench marked them so, and wherever a JSON predates the load record (docs/hooks.py, run by `mkdocs build`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hooks():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(backend: str, total: float, noisy: bool, **extra: object) -> dict:
    return {"case": "blog T=5 B=2", "backend": backend, "status": "ok", "total_s": total, "total_min_s": total * 0.9,
            "x_floor_total": total / 0.1, "speedup_total": 1.0 / total, "ratios_noisy": noisy, **extra}


def record(noisy: bool) -> dict:
    why = ["spread above 0.1 in 1 of 3 results (up to 0.20)"] if noisy else []
    return {"machine": {"device": "cpu", "torch_threads": 2, "torch": "2.13"}, "repeats": 7, "neuron": {"kind": "iaf"},
            "peers": ["norse"], "versions": {"sinabs": "3.1.3", "norse": "not installed"},
            "load_before": [0.4, 0.3, 0.2], "load_after": [2.3, 1.1, 0.5], "cores": 2, "others_load": 0.4,
            "rounds": 7, "noisy": noisy, "noisy_why": why,
            "rows": [row("floor", 0.1, noisy, spikes_equal="n/a"),
                     row("fused", 0.15, noisy, spikes_equal=True),
                     row("snntorch", 0.4, noisy, spikes_equal=False, spike_mismatches=3, spikes_compared=96),
                     {"case": "blog T=5 B=2", "backend": "norse", "status": "not installed",
                      "install": "pip install --no-deps norse==1.1.0", "spikes_equal": "n/a"}]}


def test_a_quiet_run_shows_its_ratios_and_the_load() -> None:
    text = hooks().backends_tables({"date": "2026-12-03", "title": "t", "command": "c", "conditions": "Quiet.",
                                    "json": record(noisy=False)})
    assert "1-minute load average 0.40 before, 2.30 after on 2 cores (other processes ~0.40); not noisy" in text
    assert "| blog T=5 B=2 | fused | 150.0 | 135.0 | 1.50 | 6.67 | true |" in text
    assert "| blog T=5 B=2 | snntorch | 400.0 | 360.0 | 4.00 | 2.50 | false (3 of 96 differ) |" in text
    assert "| blog T=5 B=2 | norse | not installed: `pip install --no-deps norse==1.1.0` |" in text


def test_a_noisy_run_and_a_json_without_load_withhold_the_ratios() -> None:
    h = hooks()
    text = h.backends_tables({"date": "d", "title": "t", "command": "c", "conditions": "", "json": record(noisy=True)})
    assert "| blog T=5 B=2 | fused | 150.0 | 135.0 | noisy | noisy | true |" in text
    assert "noisy: spread above 0.1" in text
    old = record(noisy=False)
    for key in ("load_before", "load_after", "noisy"):
        old.pop(key)
    text = h.backends_tables({"date": "d", "title": "t", "command": "c", "conditions": "", "json": old})
    assert "Load: not recorded" in text and "| blog T=5 B=2 | fused | 150.0 | 135.0 | noisy | noisy | true |" in text
