"""`brainlab <command>`: one console script, one argument style, one line for a bad call."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.config import CONF

from brainlab import cli
from brainlab.core import paths
from brainlab.core.errors import ConfigError


@pytest.fixture(autouse=True)
def config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command sets BRAINLAB_CONFIG_DIR for its process: restore it after each test."""
    monkeypatch.setenv("BRAINLAB_CONFIG_DIR", str(CONF))


def test_usage_lists_every_command(capsys) -> None:  # noqa: ANN001
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in ("train", "eval", "bench", "export", "params", "measure", "nab-score"):
        assert f"  {name} " in out
    assert cli.main(["--help"]) == 0


def test_unknown_command_is_one_line(capsys) -> None:  # noqa: ANN001
    assert cli.main(["trian"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown command 'trian'")


def test_a_config_dir_without_the_tree_is_one_line_naming_the_flag(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert cli.main([f"--config-dir={tmp_path}", "params"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--config-dir={tmp_path}" in err and "no train.yaml" in err


def test_outside_a_checkout_the_line_names_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAINLAB_CONFIG_DIR")
    monkeypatch.setattr(paths, "CHECKOUT_CONF", tmp_path / "conf")
    with pytest.raises(ConfigError, match="pass --config-dir=<path to conf/>"):
        paths.config_dir()
    assert paths.config_dir(CONF) == CONF.resolve()


def test_commands_dispatch_with_key_value_arguments(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert cli.main(["bench", "htm", "--help"]) == 0
    assert "rows" in capsys.readouterr().out
    assert cli.main(["nab-score", f"results={tmp_path / 'none'}", f"corpus={tmp_path}"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert cli.main(["params", "model=brain_ai", "preset=tiny"]) == 0
    assert "total" in capsys.readouterr().out


def test_run_as_a_module_the_hydra_commands_get_their_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys) -> None:  # noqa: ANN001
    """`python -m brainlab.cli train ...` (the module runs as `__main__`): a bad value is its one line, exit 2."""
    import runpy

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr("sys.argv", ["brainlab.cli", "train", "model.net.hidden_dim=0",
                                     f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("brainlab.cli", run_name="__main__", alter_sys=False)
    assert stop.value.code == 2
    assert "error: model.net.hidden_dim must be a positive integer, got 0" in capsys.readouterr().err
