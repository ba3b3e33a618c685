"""`python eval.py ckpt_path=...`: test a checkpoint with the config saved in its run dir plus overrides."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from brainlab.callbacks.preemption import RunInterrupted
from brainlab.core.aliases import rewrite_config
from brainlab.core.errors import ConfigError
from brainlab.train import (
    build,
    check_ckpt_path,
    close_loggers,
    exit_interrupted,
    exit_with_one_line,
    finish,
    output_dir_of,
    resolve_ckpt_path,
    signals_as_exits,
)
from brainlab.utils.record import write_record
from brainlab.validate import check_checkpoint, read_checkpoint, validate_run

log = logging.getLogger(__name__)

#: keys the evaluation always takes from its own composition, never from the saved run
OWN_KEYS = ("paths", "task_name", "train", "test", "ckpt_path")


def find_run_config(ckpt_path: str | Path) -> Path:
    """The saved config of the run that wrote `ckpt_path` (searched upwards from the file):
    Hydra's `.hydra/config.yaml`, else brainlab's `record/config.unresolved.yaml`."""
    ckpt = Path(ckpt_path)
    if not ckpt.exists():  # a directory for FSDP's sharded checkpoints
        raise ConfigError(f"ckpt_path={ckpt} does not exist: point it at a .ckpt of an earlier run")
    for folder in list(ckpt.resolve().parents)[:4]:
        hydra_saved, record_saved = folder / ".hydra" / "config.yaml", folder / "record" / "config.unresolved.yaml"
        for candidate in (hydra_saved, record_saved):
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"no .hydra/config.yaml or record/config.unresolved.yaml found above ckpt_path={ckpt}: eval.py needs "
        "the run dir the checkpoint was written in (or pass the full config with train.py train=false ckpt_path=...)"
    )


def merge_saved(saved: DictConfig, current: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The saved run config, with the keys named by `overrides` (and OWN_KEYS) taken from `current`."""
    merged = saved.copy()
    keys = list(OWN_KEYS)
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if not override.is_hydra_override():
            keys.append(override.key_or_group.split("@")[0])
    OmegaConf.set_struct(merged, False)
    for key in keys:
        value = OmegaConf.select(current, key, default=None, throw_on_missing=False)
        OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


def run(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint `cfg.ckpt_path` with the (already merged) config `cfg`."""
    validate_run(cfg, train=False)
    check_ckpt_path(cfg.ckpt_path, cfg.trainer)
    if Path(cfg.ckpt_path).is_file():
        read_checkpoint(Path(cfg.ckpt_path))
    write_record(cfg, Path(cfg.paths.output_dir), seed=cfg.get("seed"))
    datamodule, model, trainer = build(cfg)
    check_checkpoint(cfg.ckpt_path, model)
    trainer.test(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, verbose=False)  # the report prints
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    finish(trainer, metrics, Path(cfg.paths.output_dir))
    return metrics


def evaluate(ckpt_path: str | Path, current: DictConfig, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Load the run's saved config, apply `overrides` from `current`, test the checkpoint (a run dir: its newest)."""
    if not ckpt_path:
        raise ConfigError("ckpt_path is required: python eval.py ckpt_path=<a .ckpt file, or a run dir for its "
                          "newest checkpoint>")
    ckpt_path = resolve_ckpt_path(str(ckpt_path)) or ckpt_path
    saved = rewrite_config(OmegaConf.load(find_run_config(ckpt_path)))
    cfg = merge_saved(saved, current, [*overrides, f"ckpt_path={ckpt_path}"])
    cfg.ckpt_path = str(ckpt_path)
    return run(cfg)


def main(cfg: DictConfig) -> float | None:
    """The entry point's body: errors as one line, loggers always closed."""
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    try:
        with signals_as_exits():
            metrics = evaluate(cfg.ckpt_path, cfg, overrides)
        return metrics.get(cfg.get("optimized_metric") or "", None)
    except RunInterrupted as exc:
        exit_interrupted(exc)
    except KeyboardInterrupt:
        exit_interrupted(RunInterrupted(2, None, "during the evaluation"))
    except Exception as exc:
        exit_with_one_line(exc, output_dir_of(cfg))
    finally:
        close_loggers()
