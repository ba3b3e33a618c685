"""The entry script as a user runs it: multirun job dirs, one-line errors, run dirs never reused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.config import FAST, ROOT
from helpers.entry import run_script


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )


@pytest.mark.heavy
def test_multirun_makes_one_dir_per_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = train("-m", *FAST, "model.net.hidden_dim=16,32", "seed=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        assert "test/acc" in json.loads((job / "metrics.json").read_text())
        run_info = json.loads((job / "record" / "run.json").read_text())
        config = (job / "record" / "config.yaml").read_text()
        hidden = next(line for line in config.splitlines() if "hidden_dim:" in line).split()[-1]
        seen.add((int(hidden), run_info["seed"]))
    assert seen == {(16, 1), (16, 2), (32, 1), (32, 2)}


def test_bad_value_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """train.py's own `__main__` (in this process: the multirun test above runs it as a new interpreter)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    code = run_script(ROOT / "train.py", *FAST, "model.net.hidden_dim=0", f"hydra.run.dir={tmp_path / 'run'}")
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == "error: model.net.hidden_dim must be a positive integer, got 0"
    assert "Traceback" not in err


def test_existing_run_dir_is_never_reused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "metrics.json").write_text('{"test/acc": 0.5}')
    code = run_script(ROOT / "train.py", f"hydra.run.dir={old}", *FAST)
    assert code != 0
    assert f"hydra.run.dir={old} already holds a run" in capsys.readouterr().err
    assert [p.name for p in old.iterdir()] == ["metrics.json"]
    assert (old / "metrics.json").read_text() == '{"test/acc": 0.5}'
