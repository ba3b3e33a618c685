"""`python -m brainlab.bench scale`: one train.py run per (preset, batch size), timed, with its peak memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainlab.bench.scale import error_line, main, training_state


def test_scale_bench_times_the_recipe(tmp_path: Path) -> None:
    result = main(["batch_sizes=[2]", "steps=2", "warmup=1", f"out={tmp_path}"])
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["batch"] == 2 and row["world_size"] == 1
    assert row["samples_per_s"] > 0 and row["step_s"] > 0 and row["peak_gib"] > 0.05  # a Python process's RSS
    params, state = training_state("tiny")
    assert row["params"] == params and row["state_gib"] == state / 2**30
    assert 14 * params < state < 16 * params  # 16 B a trained parameter, 2 B an int16 HTM permanence
    saved = json.loads((tmp_path / "scale.json").read_text())
    assert saved["rows"] == [row]
    assert (tmp_path / "scale.png").stat().st_size > 0
    # bench hygiene: every timed step kept, median and min, the load, noisy on 2 steps
    assert len(row["steps_s"]) == 2 and row["min_step_s"] <= row["step_s"] and row["noisy"]
    assert row["samples_per_s"] == pytest.approx(2 / row["step_s"])
    assert saved["rounds"] == 1 and len(saved["load_before"]) == len(saved["load_after"]) == 3 and saved["noisy"]



def test_a_failed_run_is_named_by_its_error_line() -> None:
    output = ("Lightning warning: something\nerror: trainer settings refused by Lightning: Precision 'x' is invalid\n"
              "\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n")
    assert error_line(output) == "error: trainer settings refused by Lightning: Precision 'x' is invalid"
    assert error_line("Traceback ...\nValueError: bad\nSet the environment variable HYDRA_FULL_ERROR=1") == \
        "ValueError: bad"
    assert error_line("") == ""
