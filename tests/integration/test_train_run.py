"""End-to-end runs through brainlab.train.run: learning, records, loggers, the target table, bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from brainlab.core.errors import ConfigError
from brainlab.train import close_loggers, main, run


@pytest.mark.heavy
def test_default_run_learns(make_cfg) -> None:
    """`python train.py` with no arguments: the event SNN learns the synthetic set to >= 0.8 test accuracy."""
    cfg = make_cfg("callbacks.progress_bar=null", tiny=False)
    metrics = run(cfg)
    assert metrics["test/acc"] >= 0.8
    out = Path(cfg.paths.output_dir)
    rows = {r["id"]: r for r in json.loads((out / "targets.json").read_text())}
    assert rows["synthetic"]["achieved"] == pytest.approx(metrics["test/acc"])
    assert rows["synthetic"]["status"] == "met"
    assert all(r["status"] == "not measured" for k, r in rows.items() if k != "synthetic")
    assert "| synthetic | 2 | test/acc | 0.8 |" in (out / "targets.md").read_text()


def test_run_leaves_its_record(make_cfg) -> None:
    cfg = make_cfg("seed=7", "trainer.limit_train_batches=2")
    metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    info = json.loads((out / "record" / "run.json").read_text())
    assert info["seed"] == 7
    assert "commit" in info["git"]
    assert "hidden_dim: 16" in (out / "record" / "config.yaml").read_text()
    assert any(line.startswith("torch==") for line in (out / "record" / "requirements.txt").read_text().split())
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
    assert (out / "checkpoints" / "last.ckpt").is_file()


def test_csv_logger_writes_metrics(make_cfg) -> None:
    cfg = make_cfg("logger=csv", "trainer.limit_train_batches=2", "trainer.max_epochs=2", "trainer.log_every_n_steps=1")
    run(cfg)
    text = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text()
    header = text.splitlines()[0].split(",")
    for column in ("train/loss_step", "val/acc", "test/acc", "val/rate/mean", "lr-AdamW"):
        assert column in header
    assert (Path(cfg.paths.output_dir) / "csv" / "hparams.yaml").read_text().count("hidden_dim: 16") == 1


def test_wandb_offline_writes_its_run(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg("logger=wandb", "trainer.limit_train_batches=2")
    run(cfg)
    close_loggers()  # what train.py's main does after every run
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    data = b"".join(p.read_bytes() for p in runs[0].glob("*.wandb"))
    assert b"hidden_dim" in data, "the resolved config is logged to the offline W&B run"
    assert b"test/acc" in data, "the metrics are logged to the offline W&B run"


def test_limited_test_set_is_not_measured(make_cfg) -> None:
    cfg = make_cfg("trainer.limit_train_batches=2", "trainer.limit_test_batches=1")
    run(cfg)
    rows = {r["id"]: r for r in json.loads((Path(cfg.paths.output_dir) / "targets.json").read_text())}
    assert rows["synthetic"]["status"] == "not measured"
    assert rows["synthetic"]["note"] == "test set limited"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.net.hidden_dim=0", "model.net.hidden_dim must be a positive integer, got 0"),
        ("model.net.hidden_dim=-3", "model.net.hidden_dim must be a positive integer, got -3"),
        ("model.net.neuron.kind=hodgkin",
         "model.net.neuron.kind='hodgkin' is not supported; choose one of: alif, iaf, lif"),
        ("data.batch_size=0", "data.batch_size must be a positive integer, got 0"),
        ("target=nope", "target='nope' is not a row of conf/targets.yaml"),
    ],
)
def test_bad_values_stop_with_one_line(make_cfg, capsys, override: str, message: str) -> None:
    cfg = make_cfg(override)
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {message}" or err[-1].startswith(f"error: {message}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_trainer_without_cuda_is_refused(make_cfg) -> None:
    cfg = make_cfg("trainer=gpu")
    with pytest.raises(ConfigError, match=r"trainer.accelerator=gpu needs CUDA.*use trainer=cpu"):
        run(cfg)
