"""`brainlab bench backends peers=true`: snntorch, norse (plain and compiled) and spikingjelly as rows of the same
table on the same nets and weights, their spikes equal to sinabs's where the neuron model matches, `n/a` where it does
not, and `not installed` (with the pip line) for a missing package, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from brainlab.bench import backends, peers
from brainlab.core.errors import ConfigError
from brainlab.snn.spec import parse_neuron

ROOT = Path(__file__).resolve().parents[2]
TINY = ["grid=false", "blog_model.widths=[6,8,8,3]", "blog_model.steps=6", "blog_model.batch=2", "repeats=1",
        "device=cpu", "backends=[fused]"]


def installed(name: str) -> bool:
    return peers.import_error(peers.BUILDERS[name][1]) is None


def test_peer_rows_on_the_same_weights_spike_as_sinabs_where_the_model_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.compile's first compile of a norse cell takes 10-70 s on 2 cores: the compiled row is built around the
    # cell as its users do, and run here uncompiled (test_norse_compiled_cell_for_real, `slow`, compiles it)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(kw) or module)
    record = backends.main([*TINY, "peers=true", "+neuron.spike_fn=single", "+neuron.reset=zero", f"out={tmp_path}"])
    rows = {r["backend"]: r for r in record["rows"]}
    assert list(rows) == ["floor", "sinabs", "fused", "snntorch", "norse", "norse+compile", "spikingjelly"]
    for name in peers.NAMES:
        row = rows[name]
        if not installed(name):
            assert row["status"] == "not installed" and row["install"].startswith("pip install --no-deps")
            continue
        # IAF, single spike, reset to zero: every peer's neuron is sinabs's (peers module docstring)
        assert row["status"] == "ok" and row["peer"] and row["total_s"] > 0
        assert row["spikes_equal"] is True and row["spike_mismatches"] == 0 and row["spikes_compared"] == 2 * 6 * 16
    assert rows["fused"]["spikes_equal"] is True
    assert rows["sinabs"]["spikes_equal"] == rows["floor"]["spikes_equal"] == "n/a"
    if installed("norse+compile"):
        assert compiled == [{"dynamic": False}] * 2, "each spiking layer's cell, compiled whole"
    assert record["peers"] == list(peers.NAMES) and record["versions"]["sinabs"]
    saved = json.loads(Path(record["out"], "backends.json").read_text())
    assert [r["backend"] for r in saved["rows"]] == list(rows)
    assert Path(record["out"], "backends_floor.png").stat().st_size > 1000


def test_sinabs_default_multi_spike_is_not_compared_and_norse_cannot_subtract() -> None:
    multi = parse_neuron("sinabs", {"kind": "iaf"})
    assert not any(peers.match(name, multi).compare for name in peers.NAMES)
    assert "spike_fn=multi" in peers.match("snntorch", multi).note
    single = parse_neuron("sinabs", {"kind": "iaf", "spike_fn": "single"})
    assert {name: peers.match(name, single).compare for name in peers.NAMES} == {
        "snntorch": True, "norse": False, "norse+compile": False, "spikingjelly": True}
    assert "resets to zero" in peers.match("norse", single).note
    lif = parse_neuron("sinabs", {"kind": "lif", "tau_mem": 10.0, "spike_fn": "single"})
    assert all(peers.match(name, lif).compare for name in peers.NAMES)
    assert "twice the threshold" in peers.match("snntorch", lif).note
    alif = [r for r in peers.rows(["snntorch"], {"kind": "alif", "tau_mem": 10.0, "tau_adapt": 50.0})]
    assert alif[0].status == "skipped" and alif[0].layer is None and "kind=alif" in alif[0].why


@pytest.mark.parametrize("neuron", [{"kind": "iaf", "spike_fn": "single"}, {"kind": "iaf", "spike_fn": "single",
                                    "reset": "zero"}, {"kind": "lif", "tau_mem": 10.0, "spike_fn": "single"},
                                    {"kind": "lif", "tau_mem": 10.0, "spike_fn": "single", "reset": "zero"}])
def test_each_matching_peer_layer_spikes_as_sinabs(neuron: dict) -> None:
    from brainlab.snn.sinabs_backend import build

    spec = parse_neuron("sinabs", neuron)
    torch.manual_seed(0)
    x = torch.randn(4, 40, 6) * 2.0  # membranes stay below twice the threshold (snntorch's LIF guard, docstring)
    ref = build(spec)(x)
    for row in peers.rows(list(peers.NAMES[:2]) + ["spikingjelly"], neuron):
        if row.status == "not installed":
            continue
        if row.match.compare:
            assert torch.equal(row.layer()(x), ref), (row.name, neuron)


def test_a_missing_peer_is_a_row_with_the_pip_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(peers.BUILDERS, "norse", ("norse", "no_such_module_for_brainlab", peers.NorseLayer))
    record = backends.main([*TINY, "peers=[norse]", f"out={tmp_path}"])
    (row,) = [r for r in record["rows"] if r["backend"] == "norse"]
    assert row["status"] == "not installed" and row["install"] == "pip install --no-deps norse==1.1.0"
    assert "ModuleNotFoundError" in row["why"] and row["spikes_equal"] == "n/a"
    assert "not installed: ModuleNotFoundError" in capsys.readouterr().out


def test_unknown_peer_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"peers=\['nest'\] unknown; choose true, false or a list of: snntorch"):
        backends.main([*TINY, "peers=[nest]", "out=/nonexistent/never-written"])


def test_the_bench_extra_pins_what_the_pip_lines_say() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    assert sorted(extra) == sorted([peers.PINS["snntorch"], peers.PINS["loguru"]])  # those that install plainly
    assert all(peers.PINS[name] in (ROOT / "docs" / "backends.md").read_text() for name in ("norse", "spikingjelly"))
    assert peers.install_line("spikingjelly") == "pip install --no-deps spikingjelly==2.0.0 loguru"


@pytest.mark.slow
def test_norse_compiled_cell_for_real(tmp_path: Path) -> None:
    if not installed("norse+compile"):
        pytest.skip("norse is not installed")
    record = backends.main([*TINY, "peers=[norse+compile]", "+neuron.spike_fn=single", "+neuron.reset=zero",
                            f"out={tmp_path}"])
    (row,) = [r for r in record["rows"] if r["backend"] == "norse+compile"]
    assert row["status"] == "ok" and row["spikes_equal"] is True
