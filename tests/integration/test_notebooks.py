"""The results notebooks run: each is executed with nbclient on bench JSON, so neither it nor the bench format rots.

- on the JSON committed with the docs (what the notebooks show by default; the default run, ~10 s), and
- on a tiny JSON that the bench itself writes here on tiny settings (so a change of the bench's JSON breaks this test,
  not a reader's notebook; `slow`: ~25 s more on 2 cores). The tiny numbers are a format check, never a measurement.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.config import ROOT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "docs" / "results" / "data"


def execute(name: str, json_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run notebooks/<name>.ipynb with BRAINLAB_BENCH_JSON=json_path (the kernel inherits the environment)."""
    monkeypatch.setenv("BRAINLAB_BENCH_JSON", str(json_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def images_of(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both benches run in-process on tiny settings; their own JSON files."""
    from brainlab.bench import backends, caching

    out = tmp_path_factory.mktemp("bench")
    caching.main(["samples=32", "events=100", "batch_size=16", "caches=[none,memory]", "backends=[fused]",
                  "epochs=1", "floor_batches=1", f"out={out / 'caching'}"])
    record = backends.main(["sizes=[8]", "steps=[4]", "batch=2", "repeats=1", "blog=false", "backends=[fused]",
                            f"out={out / 'backends'}"])
    return {"caching": out / "caching" / "caching.json", "backends": Path(record["out"]) / "backends.json"}


def test_notebooks_on_committed_json(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("caching", DATA / "caching_2026-12-02_cpu.json", monkeypatch)
    assert "not measured" in text_of(nb) and images_of(nb) == 1
    nb = execute("backends", DATA / "backends_2026-12-02_cpu.json", monkeypatch)
    assert "the bench has no peers" in text_of(nb) and images_of(nb) == 2


@pytest.mark.slow
def test_notebooks_on_json_the_bench_writes(tiny_json: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("caching", tiny_json["caching"], monkeypatch)
    out = text_of(nb)
    assert "32 samples, batch 16" in out and "not measured" in out  # disk / gpu / other backends left out
    nb = execute("backends", tiny_json["backends"], monkeypatch)
    assert "grid n=8 T=4 B=2" in text_of(nb) and images_of(nb) == 2


def test_committed_notebooks_hold_their_outputs() -> None:
    """The notebooks are committed executed (outputs of the committed JSON), without errors."""
    for name in ("caching", "backends"):
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs and not [o for o in outputs if o.output_type == "error"], name
