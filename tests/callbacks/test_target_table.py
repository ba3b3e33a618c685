"""Target-table statuses from hand-made rows."""

from __future__ import annotations

import pytest

from brainlab.callbacks.target_table import TargetTable, build_table, row_status, to_markdown
from brainlab.core.errors import ConfigError

TABLE = {
    "acc": {"phase": 2, "metric": "test/acc", "value": 0.9},
    "err": {"phase": 3, "metric": "test/err", "value": 0.1, "mode": "min"},
}


@pytest.mark.parametrize(
    ("row", "achieved", "measured", "status"),
    [
        (TABLE["acc"], 0.95, True, "met"),
        (TABLE["acc"], 0.9, True, "met"),
        (TABLE["acc"], 0.5, True, "not met"),
        (TABLE["acc"], 0.95, False, "not measured"),
        (TABLE["acc"], None, True, "not measured"),
        (TABLE["acc"], float("nan"), True, "not measured"),
        (TABLE["err"], 0.05, True, "met"),
        (TABLE["err"], 0.2, True, "not met"),
    ],
)
def test_row_status(row, achieved, measured, status) -> None:
    assert row_status(row, achieved, measured) == status


def test_only_the_runs_row_is_measured_and_gap_is_logged_value_minus_target() -> None:
    rows = build_table(TABLE, "acc", {"test/acc": 0.93, "test/err": 0.01}, measured=True)
    by_id = {r["id"]: r for r in rows}
    assert by_id["acc"]["achieved"] == 0.93 and by_id["acc"]["gap"] == pytest.approx(0.03)
    assert by_id["err"]["status"] == "not measured" and by_id["err"]["achieved"] is None
    md = to_markdown(rows)
    assert "| acc | 2 | test/acc | 0.9 | 0.93 | met |" in md


def test_fixture_runs_say_why_not_measured() -> None:
    rows = build_table(TABLE, "acc", {"test/acc": 0.99}, measured=False, reason="not the full dataset")
    assert rows[0]["status"] == "not measured" and rows[0]["note"] == "not the full dataset"


def test_unknown_target_row_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="target='nope' is not a row of conf/targets.yaml"):
        TargetTable(TABLE, "nope", str(tmp_path))


def test_rows_are_filled_only_by_the_data_they_describe_and_never_by_debug_runs(tmp_path) -> None:
    from types import SimpleNamespace

    from helpers.config import compose_cfg
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose_cfg(tmp_path / "run")
    targets = OmegaConf.to_container(cfg.targets)

    def measured(target: str, datamodule: object, debug: bool = False, **trainer: object) -> tuple[bool, str]:
        table = TargetTable(targets, target, str(tmp_path), debug=debug)
        settings = {"datamodule": datamodule, "limit_test_batches": 1.0, "fast_dev_run": False, "overfit_batches": 0}
        return table.measured(SimpleNamespace(**{**settings, **trainer}))

    def synthetic(**changes: object) -> object:
        data = cfg.data.copy()
        for key, value in changes.items():
            OmegaConf.update(data, key, value, force_add=True)
        return instantiate(data, _convert_="all")

    assert measured("synthetic", synthetic()) == (True, "")  # the documented set
    ok, why = measured("synthetic", synthetic(num_classes=2))  # a resized set
    assert not ok and "not this row's" in why
    assert not measured("synthetic", synthetic(**{"generator.noise_rate_hz": 50}))[0]
    assert measured("synthetic", synthetic(), debug=True) == (False, "a debug run")
    assert measured("synthetic", synthetic(), overfit_batches=3) == (False, "an overfit run")
    cartpole = SimpleNamespace(dataset_id="mujoco/cartpole/expert-v0", is_full_dataset=True, dataset_name="minari",
                               batch_size=8)
    ok, why = measured("antmaze", cartpole)
    assert not ok and "D4RL/antmaze/*" in why
    antmaze = SimpleNamespace(**{**vars(cartpole), "dataset_id": "D4RL/antmaze/umaze-v1"})
    assert measured("antmaze", antmaze) == (True, "")
    # every debug overlay shares conf/debug/default.yaml, which marks the run as a debug run
    assert compose_cfg(tmp_path / "run", ["debug=overfit"]).callbacks.target_table.debug is True
