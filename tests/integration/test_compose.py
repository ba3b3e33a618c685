"""Every experiment composes; groups swap by one word; unknown options get Hydra's own message."""

from __future__ import annotations

import pytest
from helpers.config import CONF, compose_cfg
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from brainlab.validate import validate_run

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(experiment: str, tmp_path) -> None:
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}"])
    validate_run(cfg)  # the setup checks (issue 22) refuse nothing a shipped experiment sets
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["target"] in resolved["targets"], "an experiment names a row of conf/targets.yaml"
    assert resolved["model"]["_target_"].startswith("brainlab.phases.")


def test_defaults_are_the_synthetic_event_snn(tmp_path) -> None:
    cfg = compose_cfg(tmp_path)
    assert cfg.data._target_ == "brainlab.data.synthetic.SyntheticEventDataModule"
    assert cfg.model._target_ == "brainlab.phases.event_snn.EventSNN"
    assert cfg.trainer.accelerator == "cpu"
    assert set(cfg.logger) == {"csv"}
    assert cfg.targets[cfg.target].value == 0.8


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("backend=sinabs", "backend._target_", "brainlab.snn.sinabs_backend.neuron"),
        ("cache=none", "cache._target_", "brainlab.data.caching.NoCache"),
        ("trainer=cpu", "trainer.accelerator", "cpu"),
        ("trainer=gpu", "trainer.accelerator", "gpu"),
        ("logger=wandb", "logger.wandb.offline", True),
    ],
)
def test_one_word_swaps(override: str, key: str, expected: object, tmp_path) -> None:
    cfg = compose_cfg(tmp_path, [override])
    assert OmegaConf.select(cfg, key) == expected


def test_unknown_group_option_is_hydras_message(tmp_path) -> None:
    with pytest.raises(ConfigCompositionException, match="Could not find 'backend/nope'"):
        compose_cfg(tmp_path, ["backend=nope"])


def test_backend_reaches_the_net_as_a_factory(tmp_path) -> None:
    cfg = compose_cfg(tmp_path)
    factory = instantiate(cfg.backend)
    layer = factory(kind="iaf")
    assert hasattr(layer, "reset_states")
