"""Foundation II: resume, eval, DDP, FSDP refusal, precision, loggers, debug overlays."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.config import CONF, TINY, compose_cfg

from brainlab.core.errors import ConfigError
from brainlab.eval import evaluate
from brainlab.train import close_loggers, run

DETERMINISTIC = ["trainer.deterministic=true", "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1"]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if v.numel()}


def test_resume_continues_at_saved_step_and_matches_uninterrupted_run(tmp_path) -> None:
    """Resume from the epoch-1 checkpoint of a 2-epoch run: same final weights as the run itself."""
    common = [*TINY, *DETERMINISTIC, "trainer.max_epochs=2", "callbacks.model_checkpoint.save_top_k=-1"]
    straight = compose_cfg(tmp_path / "straight", common)
    run(straight)
    checkpoints = Path(straight.paths.output_dir) / "checkpoints"
    saved = next(checkpoints.glob("epoch000-*.ckpt"))
    assert torch.load(saved, weights_only=True)["global_step"] == 3

    resumed = compose_cfg(tmp_path / "resumed", [*common, f"ckpt_path={saved}"])
    run(resumed)
    resumed_ckpt = Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(resumed_ckpt, weights_only=True)["global_step"] == 6
    csv = (Path(resumed.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()
    header = csv[0].split(",")
    logged_steps = {int(row.split(",")[header.index("step")]) for row in csv[1:]}
    assert min(logged_steps) >= 3, "the resumed run starts at the saved global step"
    a, b = weights(resumed_ckpt), weights(checkpoints / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_eval_reproduces_the_test_metric_of_a_checkpoint(make_cfg, tmp_path) -> None:
    cfg = make_cfg("trainer.max_epochs=2")
    trained = run(cfg)
    best = next((Path(cfg.paths.output_dir) / "checkpoints").glob("epoch*.ckpt"))
    current = compose_cfg(tmp_path / "eval", ["data.batch_size=5"])
    metrics = evaluate(best, current, overrides=["data.batch_size=5"])
    assert metrics["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    record = (tmp_path / "eval" / "record" / "config.yaml").read_text()
    assert "batch_size: 5" in record, "the override replaced the saved value"
    assert "hidden_dim: 16" in record, "the rest comes from the run's saved config"


def test_eval_of_a_missing_checkpoint_is_one_line(tmp_path) -> None:
    current = compose_cfg(tmp_path / "eval")
    with pytest.raises(ConfigError, match="ckpt_path=.*nope.ckpt does not exist"):
        evaluate(tmp_path / "nope.ckpt", current)


@pytest.mark.heavy
def test_ddp_fits_one_epoch_on_two_cpu_processes(make_cfg) -> None:
    cfg = make_cfg("trainer=ddp", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "test=false")
    assert cfg.trainer.devices == 2 and cfg.trainer.strategy == "ddp_spawn"
    metrics = run(cfg)
    assert "val/acc" in metrics and "train/loss_epoch" in metrics
    out = Path(cfg.paths.output_dir)
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_fsdp_without_cuda_is_refused(make_cfg) -> None:
    with pytest.raises(ConfigError, match="trainer=fsdp needs CUDA GPUs"):
        run(make_cfg("trainer=fsdp"))


def test_bf16_mixed_precision_trains(make_cfg) -> None:
    metrics = run(make_cfg("trainer.precision=bf16-mixed", "trainer.limit_train_batches=3"))
    assert torch.isfinite(torch.tensor(metrics["train/loss_epoch"]))


def test_many_loggers_write_their_files(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg("logger=many", "logger.wandb.id=resume01", "trainer.limit_train_batches=2")
    run(cfg)
    close_loggers()
    out = Path(cfg.paths.output_dir)
    assert (out / "csv" / "metrics.csv").is_file()
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    runs = list((out / "wandb").glob("offline-run-*"))
    assert [r.name.split("-")[-1] for r in runs] == ["resume01"], "the W&B run takes the given id"


@pytest.mark.parametrize("overlay", sorted(p.stem for p in (CONF / "debug").glob("*.yaml") if p.stem != "default"))
def test_debug_overlays_compose(overlay: str, tmp_path) -> None:
    cfg = compose_cfg(tmp_path, [f"debug={overlay}"])
    assert cfg.task_name == "debug"
    assert cfg.trainer.detect_anomaly is True


def test_debug_fdr_runs_one_batch(make_cfg) -> None:
    metrics = run(make_cfg("debug=fdr"))
    assert "test/acc" in metrics


def test_debug_limit_runs_on_a_tiny_dataset(make_cfg) -> None:
    cfg = make_cfg("debug=limit", "trainer.max_epochs=1")
    assert "test/acc" in run(cfg)


def test_a_trainer_setting_lightning_refuses_is_one_config_error(make_cfg) -> None:
    from brainlab.core.errors import find_brainlab_error
    from brainlab.train import lightning_config_error

    with pytest.raises(Exception) as caught:
        run(make_cfg("trainer.limit_train_batches=0.01"))  # no training batch: refused at setup, naming the limit
    error = find_brainlab_error(caught.value) or lightning_config_error(caught.value)
    assert isinstance(error, ConfigError) and "limit_train_batches" in str(error)
    with pytest.raises(Exception) as caught:
        run(make_cfg("trainer.precision=nonsense"))
    error = find_brainlab_error(caught.value) or lightning_config_error(caught.value)
    assert isinstance(error, ConfigError) and "trainer.precision" in str(error) and "nonsense" in str(error)
