"""The parameter table of every preset, built on the meta device: the 7B rows within +-10% of the guide."""

from __future__ import annotations

import pytest
from helpers.config import compose_cfg

from brainlab.params import GUIDE_7B, build_on_meta, main, table

PRESETS = ("tiny", "1b", "3b", "7b")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = {}
    for preset in PRESETS:
        cfg = compose_cfg(tmp_path_factory.mktemp(preset), ["model=brain_ai", f"preset={preset}"])
        net = build_on_meta(cfg)
        out[preset] = (cfg, net, table(cfg, net))
    return out


@pytest.mark.parametrize("preset", PRESETS)
def test_meta_build_has_every_part_and_no_storage(preset: str, tables: dict) -> None:
    _, net, rows = tables[preset]
    assert all(t.is_meta for t in [*net.parameters(), *net.buffers()])
    by_part = {r.part: r for r in rows}
    assert set(GUIDE_7B) <= set(by_part)
    assert all(by_part[p].total > 0 for p in GUIDE_7B)
    assert by_part["htm"].rule == net.htm.permanence.numel()  # permanences counted, as buffers
    assert by_part["total"].total == sum(r.total for r in rows if r.part != "total")


def test_7b_rows_within_ten_percent_of_the_guide(tables: dict) -> None:
    rows = {r.part: r for r in tables["7b"][2]}
    for part, guide in GUIDE_7B.items():
        assert rows[part].reference == guide
        assert abs(rows[part].total / guide - 1) <= 0.10, (part, rows[part].total)
        assert rows[part].status == "OK"
    assert abs(rows["total"].total / 7e9 - 1) <= 0.10
    assert tables["7b"][1].vision.body.blocks.__len__() == 24 and tables["7b"][1].vision.dim == 1024


@pytest.mark.parametrize(("preset", "budget"), [("1b", 1e9), ("3b", 3e9)])
def test_smaller_presets_scale_every_part_pro_rata(preset: str, budget: float, tables: dict) -> None:
    rows = {r.part: r for r in tables[preset][2]}
    for part, guide in GUIDE_7B.items():
        assert rows[part].reference == pytest.approx(guide * budget / 7e9)
        assert rows[part].status == "OK", (preset, part, rows[part].deviation)
    assert rows["total"].status == "OK"


def test_tiny_is_small_and_unjudged(tables: dict) -> None:
    rows = {r.part: r for r in tables["tiny"][2]}
    assert rows["total"].total < 2_000_000
    assert {r.status for r in rows.values()} == {"–"}


def test_a_status_says_over_or_under(tables: dict) -> None:
    cfg, net, _ = tables["7b"]
    cfg.scale.tolerance = 0.001
    statuses = {r.part: r.status for r in table(cfg, net)}
    assert statuses["audio"] == "over" and statuses["text"] == "under"


def test_cli_prints_the_table(capsys: pytest.CaptureFixture) -> None:
    text = main(["model=brain_ai", "preset=7b"])
    assert text == capsys.readouterr().out.strip()
    assert "| engram memory |" in text and text.count("| OK |") == len(GUIDE_7B) + 1


def test_cli_refuses_another_model(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["model=event_snn"])
    assert exc.value.code == 2
    assert "model=brain_ai" in capsys.readouterr().err
