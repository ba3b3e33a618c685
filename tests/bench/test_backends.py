"""`python -m brainlab.bench backends [key=value ...]`: composed from conf/bench/backends.yaml, a row per backend
and case with the floor and speed-up columns, JSON and PNGs written; bad overrides refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from brainlab.bench import backends
from brainlab.core.errors import ConfigError
from brainlab.snn.event_linear import EventLinear


def test_speed_grid_smoke_through_the_bench_entry(tmp_path, capsys) -> None:
    from brainlab.bench.__main__ import main

    tiny = ["steps=[4,8]", "sizes=[8]", "batch=2", "repeats=1", "device=cpu", "blog_model.widths=[6,8,8,3]",
            "blog_model.steps=5", "blog_model.batch=2", f"out={tmp_path}"]
    assert main(["backends", *tiny]) == 0
    (run_dir,) = tmp_path.glob("backends-*")
    record = json.loads((run_dir / "backends.json").read_text())
    rows = record["rows"]
    assert {r["backend"] for r in rows} == {"floor", "sinabs", "fused", "fused+event", "fused+auto",
                                            "fastsnn"}, "exodus: CUDA"
    assert {r["case"] for r in rows} == {"grid n=8 T=4 B=2", "grid n=8 T=8 B=2", "blog 6-8-8-3 T=5 B=2"}
    assert all(r["total_s"] >= r["forward_s"] > 0 and r["total_s"] >= r["total_min_s"] > 0 for r in rows)
    assert all(r["speedup_total"] == 1.0 for r in rows if r["backend"] == "sinabs")
    assert all(r["x_floor_total"] == 1.0 for r in rows if r["backend"] == "floor")
    assert all(Path(p).stat().st_size > 1000 for p in record["pngs"]) and len(record["pngs"]) == 3
    # the same weights in every row: fused's spikes are sinabs's; the event synapse's are compared too
    by = {(r["case"], r["backend"]): r for r in rows}
    for case in {r["case"] for r in rows}:
        assert by[case, "fused"]["spikes_equal"] is True
        for variant in ("fused+event", "fused+auto"):
            assert by[case, variant]["spikes_equal"] in (True, False) and "rounding" in by[case, variant]["spikes_note"]
        assert by[case, "floor"]["spikes_equal"] == by[case, "fastsnn"]["spikes_equal"] == "n/a"
    # bench hygiene: the load, the rounds, median and min, noisy (1 repeat: always)
    assert record["rounds"] == 1 and record["noisy"] is True and "fewer than 5 repeats" in record["noisy_why"][0]
    assert "numba_vectors" in record["speed_settings"] and all("speed_settings" in c for c in record["cases"])
    assert len(record["load_before"]) == 3 and len(record["load_after"]) == 3 and record["cores"] >= 1
    assert all(r["noisy"] and r["ratios_noisy"] and r["samples"] == 1 for r in rows)
    assert [c["case"] for c in record["cases"]] == ["grid n=8 T=4 B=2", "grid n=8 T=8 B=2", "blog 6-8-8-3 T=5 B=2"]
    out = capsys.readouterr().out
    assert "/floor" in out and "x sinabs tot" in out and "[skip exodus]" in out and "spikes=sinabs" in out
    assert " noisy " in out and "load " in out


def test_event_rows_build_the_event_synapse() -> None:
    """`fused+event` / `fused+auto` wrap the configured factory: their nets' Linear layers are the event synapse."""
    impls = {i.name: i for i in backends.implementations("cpu", backends=["fused", "fused+event", "fused+auto"])}
    for name, mode in (("fused", None), ("fused+event", "event"), ("fused+auto", "auto")):
        net = backends.build([6, 8, 3], impls[name].layer, impls[name].linear)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        assert len(linears) == 2
        if mode is None:
            assert all(type(m) is nn.Linear for m in linears)
        else:
            assert all(isinstance(m, EventLinear) and m.mode == mode for m in linears), name


def test_bench_config_overrides_and_neuron(tmp_path) -> None:
    record = backends.main(["grid=false", "blog_model.widths=[4,6,2]", "blog_model.steps=6", "blog_model.batch=2",
                            "repeats=1", "device=cpu", "backends=[fused]", "neuron.kind=lif", "+neuron.tau_mem=5.0",
                            f"out={tmp_path}"])
    assert record["neuron"] == {"kind": "lif", "spike_threshold": 1.0, "tau_mem": 5.0}
    assert {r["backend"] for r in record["rows"]} == {"floor", "sinabs", "fused"}
    assert [Path(p).name for p in record["pngs"]] == ["backends_floor.png"], "no grid: no heatmap, no lines"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["nosuchkey=1"], "Could not override 'nosuchkey'"), (["backends=[nest]"], "backends ['nest'] unknown"),
     (["--steps", "4"], "takes key=value overrides")],
)
def test_bad_bench_arguments_are_one_line(tmp_path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        backends.main([*overrides, "grid=false", "blog=false", f"out={tmp_path}"])
    assert "\n" not in str(info.value)


def test_bench_cli_prints_a_bad_argument_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from brainlab.bench.__main__ import main

    assert main(["backends", "--steps", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: bench backends takes key=value overrides of conf/bench/backends.yaml, not ['--steps']")
