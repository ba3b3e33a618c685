"""Every bad input gets one line (issue 22): the table of tests/helpers/bad_inputs.py, run in-process through the
entry functions (brainlab.train.main, brainlab.eval.main, brainlab.cli.main) on one shared composed config.

Each row asserts exit status 2, no traceback (on the terminal or in an error logged on the way), exactly one
`error:` line naming the key or file and saying the fix it names, and that nothing already written changed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path

import pytest
from helpers.bad_inputs import TABLE, Bad, count, markdown, sample_overrides, write_bad_files
from helpers.config import CONF, ROOT, TINY, compose_cfg
from helpers.entry import own_logging
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import brainlab.eval
import brainlab.train
import brainlab.utils.record
from brainlab import cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One composed train config, one eval config, and the bad files (shared by every row)."""
    tmp = tmp_path_factory.mktemp("bad")
    train_cfg = compose_cfg(tmp / "unused", TINY)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        eval_cfg = compose(config_name="eval", overrides=[f"paths.output_dir={tmp / 'unused'}", *TINY])
    model = instantiate(train_cfg.model, _recursive_=False)
    wide_cfg, deep_cfg = train_cfg.copy(), train_cfg.copy()
    wide_cfg.model.net.hidden_dim = 32
    deep_cfg.model.net.n_hidden = 3
    write_bad_files(tmp, model, instantiate(wide_cfg.model, _recursive_=False),
                    instantiate(deep_cfg.model, _recursive_=False))
    (tmp / "run" / ".hydra").mkdir(parents=True)
    OmegaConf.save(train_cfg, tmp / "run" / ".hydra" / "config.yaml")
    return {"tmp": tmp, "train": train_cfg, "eval": eval_cfg}


def apply(cfg: DictConfig, overrides: list[str]) -> None:
    for override in OverridesParser.create().parse_overrides(overrides):
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False, force_add=override.is_add())


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_row(row: Bad, world: dict, out: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    tmp = world["tmp"]
    args = [a.replace("{tmp}", str(tmp)) for a in row.args]
    fault = next((a.split("=", 1)[1] for a in args if a.startswith("fault=")), None)
    args = [a for a in args if not a.startswith("fault=")]
    if fault:
        code = getattr(errno, fault)

        def refuse(path: Path, *_: object, **__: object) -> None:
            raise OSError(code, os.strerror(code), str(path))

        monkeypatch.setattr(brainlab.utils.record, "atomic_write_text", refuse)
    with pytest.raises(SystemExit) as stop:
        if row.entry == "cli":
            with own_logging():
                cli.main(["train", *TINY, *args, f"hydra.run.dir={out / 'run'}"])
        elif row.entry == "data":  # another experiment (a dataset): composed fresh
            brainlab.train.main(compose_cfg(out, sample_overrides(args)))
        elif row.entry == "eval":
            cfg = world["eval"].copy()
            cfg.paths.output_dir = str(out)
            cfg.ckpt_path = None
            apply(cfg, args)
            brainlab.eval.main(cfg)
        else:
            cfg = world["train"].copy()
            cfg.paths.output_dir = str(out)
            apply(cfg, args)
            brainlab.train.main(cfg)
    return stop.value.code


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_bad_input_is_one_line(row: Bad, world: dict, tmp_path: Path, capsys: pytest.CaptureFixture,
                               caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.txt").write_text("written before")
    before = snapshot(world["tmp"])
    code = run_row(row, world, out, monkeypatch)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, text[-2000:]
    assert "Traceback" not in text
    assert len(lines) == 1, text[-2000:]
    assert row.names in lines[0]
    for fix in row.also:
        assert fix in lines[0], lines[0]
    assert "\n" not in lines[0]
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not any("Traceback" in message for message in logged), "an error logged on the way has a traceback"
    assert snapshot(world["tmp"]) == before, "a bad input changed a file already written"
    assert (out / "kept.txt").read_text() == "written before"


def test_table_size_and_counts() -> None:
    assert len(TABLE) >= 100
    assert len({row.id for row in TABLE}) == len(TABLE), "every row once"
    assert sum(count().values()) == len(TABLE)


def test_docs_page_shows_the_table() -> None:
    assert markdown() in (ROOT / "docs" / "bad_inputs.md").read_text(), "regenerate docs/bad_inputs.md's table"


def test_unexpected_error_is_one_line_with_the_traceback_file(world: dict, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (not bad input) is one line too, exit 1, naming the file that holds the traceback."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def broken(cfg: DictConfig) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(brainlab.train, "build", broken)
    cfg = world["train"].copy()
    cfg.paths.output_dir = str(tmp_path / "out")
    with pytest.raises(SystemExit) as stop:
        brainlab.train.main(cfg)
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("error:"))
    assert stop.value.code == 1
    assert "Traceback" not in err
    assert "ZeroDivisionError: a bug" in line
    where = Path(line.split("the traceback is in ", 1)[1].split(";", 1)[0])
    assert "Traceback" in where.read_text() and "a bug" in where.read_text()


def test_full_error_keeps_the_traceback(world: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    cfg = world["train"].copy()
    cfg.paths.output_dir = str(tmp_path / "out")
    cfg.seed = "abc"
    with pytest.raises(ValueError, match="seed must be an integer"):
        brainlab.train.main(cfg)


def test_every_command_has_the_boundary(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """brainlab params / measure / nab-score: a bad argument is one line and status 2."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for argv, names in ((["nab-score", "results=/no/such/dir", "corpus=/no/such/corpus"], "error:"),
                        (["measure", "ckpt_paht=x.ckpt"], "ckpt_pa"),
                        (["nab-score", "resluts=x"], "resluts")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert names in next(line for line in err.splitlines() if line.startswith("error:"))
