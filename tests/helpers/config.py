"""The configs as tests compose them: the tree of the checkout, the tiny overrides, `compose_cfg`."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

#: no progress bar, no model summary: what every full-size test run leaves out
QUIET = ["callbacks.progress_bar=null", "trainer.enable_model_summary=false"]

# Small enough for a few-second run on 2 CPU cores.
TINY = [
    "data.num_classes=4",
    "data.n_channels=16",
    "data.duration_us=200000",
    "data.n_time_bins=20",
    "data.transform.transforms.0.time_window=10000",
    "data.samples_per_class=12",
    "data.test_samples_per_class=4",
    "data.batch_size=16",
    "model.net.hidden_dim=16",
    "trainer.max_epochs=1",
    *QUIET,
    # off unless a test is about them (`tiny(keep=...)`): pictures cost ~0.8 s a run
    *(OFF := ["callbacks.snn_media=null", "callbacks.neuromorphic=null"]),
]


def tiny(*keep: str) -> list[str]:
    """TINY with the named callbacks (`snn_media`, `neuromorphic`) left on."""
    return [o for o in TINY if o not in {f"callbacks.{name}=null" for name in keep}]


def compose_cfg(output_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose `conf/train.yaml` as `python train.py <overrides>` would, writing into `output_dir`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=[f"paths.output_dir={output_dir}", *overrides])


#: TINY cut to a couple of batches per loop, for runs that test the machinery around training (subprocess runs)
FAST = [*TINY, "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "data.test_samples_per_class=2"]
