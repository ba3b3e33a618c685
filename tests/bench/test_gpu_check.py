"""`brainlab bench gpu`: the dry run lists the steps, every step's arguments are valid for its bench, a step that
runs past its timeout is killed with its children, and the record renders (no GPU needed for any of this)."""

from __future__ import annotations

import json
import sys
import time

import pytest
import torch

from brainlab.bench import gpu
from brainlab.bench.__main__ import BENCHES, DEFAULT_OUT
from brainlab.bench.__main__ import main as bench_main
from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config

STEPS = ["pytest_gpu", "backends_blog", "backends_onb", "loading_gpu", "scale_1b_fsdp"]


def test_registered_as_a_bench() -> None:
    assert BENCHES["gpu"] == "gpu" and DEFAULT_OUT["gpu"] == "docs/results"


def test_dry_run_lists_every_step_with_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["gpu", "dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bench gpu: 5 steps, budget 290 s (dry run: nothing runs)")
    for i, name in enumerate(STEPS, 1):
        assert f"{i}. {name} (timeout " in out
    assert "-m pytest -m gpu" in out and "tests/snn/test_fused_backend.py" in out
    assert "brainlab.bench backends device=cuda grid=true blog=false sizes=[16384] steps=[500] batch=16" in out
    assert "neuron.kind=lif" in out and "backends=[fused,sinabs,exodus]" in out
    assert "brainlab.bench loading device=cuda" in out and "caches=[memory,gpu]" in out
    assert "brainlab.bench scale presets=[1b] strategy=fsdp precision=bf16-mixed" in out
    result = gpu.main(["dry_run=true", "only=[backends_blog]"])
    assert [s["name"] for s in result["steps"]] == ["backends_blog"]


def test_the_timeouts_fit_five_minutes() -> None:
    cfg = compose_config("bench/gpu", [], "bench gpu")
    assert cfg.budget_s <= 300
    assert sum(int(s.timeout_s) for s in cfg.steps) <= cfg.budget_s


def test_every_bench_step_composes_with_its_bench_config() -> None:
    cfg = compose_config("bench/gpu", [], "bench gpu")
    for step in cfg.steps:
        if step.run == "pytest":
            assert gpu.gpu_test_files(), "some test files hold gpu-marked tests"
            continue
        bench_cfg = compose_config(f"bench/{step.run}", [str(a) for a in step.args], f"bench {step.run}")
        if "device" in bench_cfg:
            assert bench_cfg.device == "cuda"


def test_unknown_step_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"only=\['nope'\]: no such step; steps: pytest_gpu, backends_blog"):
        gpu.main(["dry_run=true", "only=[nope]"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="runs the real check on a CUDA machine")
def test_without_cuda_the_check_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: bench gpu needs a CUDA device (torch sees none here); dry_run=true lists the steps"


def test_a_step_past_its_timeout_is_killed_with_its_children() -> None:
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
            "print('started', flush=True); time.sleep(60)"
    start = time.perf_counter()
    status, _, seconds, out = gpu.run_step([sys.executable, "-c", child], timeout=3)
    assert status == "timed out" and "started" in out
    assert seconds < 20 and time.perf_counter() - start < 20
    status, rc, _, out = gpu.run_step([sys.executable, "-c", "print('[skip exodus] no package')"], timeout=30)
    assert (status, rc) == ("passed", 0) and "[skip exodus]" in out


def test_record_renders_status_skips_and_backend_rows(tmp_path) -> None:  # noqa: ANN001
    record = {
        "machine": {"date": "2026-12-02T10:00:00+00:00", "device": "NVIDIA H200", "torch": "2.11.0", "cuda": "13.0",
                    "triton": "3.6.0", "python": "3.12.3"},
        "budget_s": 290, "seconds": 100.0,
        "steps": [
            {"name": "backends_blog", "status": "passed", "seconds": 30.0,
             "skipped": ["[skip exodus] backend=exodus needs sinabs-exodus"],
             "numbers": {"b/backends.json": {"rows": [{"case": "blog", "backend": "fused", "forward_s": 0.01,
                                                       "total_s": 0.03}]}}},
            {"name": "scale_1b_fsdp", "status": "timed out", "seconds": 65.0, "tail": "last words"},
            {"name": "loading_gpu", "status": "skipped", "why": "the budget was spent"},
        ],
    }
    data, page = gpu.write(record, tmp_path)
    assert data == tmp_path / "data" / "gpu_check_2026-12-02.json" and data.is_file()
    text = page.read_text()
    assert text.startswith("# GPU check, 2026-12-02\n\nDevice: NVIDIA H200; torch 2.11.0 (CUDA 13.0), Triton 3.6.0")
    assert "| backends_blog | passed | 30 | [skip exodus] backend=exodus needs sinabs-exodus |" in text
    assert "| blog | fused | 0.0100 | 0.0300 |" in text
    assert "## scale_1b_fsdp: timed out" in text and "last words" in text
    assert "| loading_gpu | skipped | 0 | the budget was spent |" in text


def test_the_record_carries_the_load_and_every_steps_seconds(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The check's own loop through the timing helper, its steps faked (no GPU, no subprocess)."""
    ran = []

    def fake_step(argv: list[str], timeout: float) -> tuple[str, int, float, str]:
        ran.append(argv)
        return "passed", 0, 1.5, "[skip exodus] no package\n"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu, "run_step", fake_step)
    monkeypatch.setattr(gpu, "machine", lambda: {"date": "2026-12-03T10:00:00+00:00", "device": "fake", "torch": "x",
                                                 "cuda": "y", "triton": "z", "python": "3"})
    record = gpu.main(["only=[pytest_gpu,backends_blog]", f"out={tmp_path}", f"work={tmp_path / 'work'}"])
    assert [s["name"] for s in record["steps"]] == ["pytest_gpu", "backends_blog"] and len(ran) == 2
    saved = json.loads((tmp_path / "data" / "gpu_check_2026-12-03.json").read_text())
    assert saved["rounds"] == 1 and len(saved["load_before"]) == len(saved["load_after"]) == 3
    assert saved["noisy"] and "fewer than 5 repeats" in saved["noisy_why"][0], "single runs: never a speed claim"
    assert "load " in (tmp_path / "gpu_check_2026-12-03.md").read_text()
