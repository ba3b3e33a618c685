"""Every bench takes `key=value`; the old `--flags` of htm/scale translate with a deprecation line."""

from __future__ import annotations

import pytest

from brainlab.bench.cli import bench_config, from_flags
from brainlab.bench.scale import RENAMED_FLAGS, parse
from brainlab.core.errors import ConfigError


def test_old_flags_become_overrides_with_one_deprecation_line(capsys) -> None:  # noqa: ANN001
    args = ["--batch-sizes", "2", "4", "--steps", "3", "--no-checkpointing", "--trainer", "cpu", "--out", "x"]
    overrides = from_flags("scale", args, RENAMED_FLAGS)
    assert overrides == ["batch_sizes=[2,4]", "steps=3", "checkpointing=false", "strategy=cpu", "out=x"]
    assert capsys.readouterr().err.count("deprecated") == 1
    assert from_flags("scale", ["steps=3"]) == ["steps=3"]


def test_scale_settings_from_both_styles_agree() -> None:
    new = parse(["batch_sizes=[2,4]", "steps=3", "checkpointing=false"])
    old = parse(["--batch-sizes", "2", "4", "--steps", "3", "--no-checkpointing"])
    assert new == old and new.batch_sizes == [2, 4] and new.no_checkpointing


@pytest.mark.parametrize(("argv", "match"), [
    (["steps=0"], "steps must be a positive integer"),
    (["nokey=1"], "bench scale: Could not override 'nokey'"),
    (["strategy=tpu"], "strategy='tpu' is not supported"),
])
def test_bad_bench_values_are_one_line(argv: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(argv)


def test_config_benches_refuse_flags_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="takes key=value overrides of conf/bench/backends.yaml"):
        bench_config("backends", None, ["--steps", "3"])
