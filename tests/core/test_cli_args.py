"""`key=value` arguments of export, measure and the NAB scorer: one style, one line for a bad one."""

from __future__ import annotations

import pytest

from brainlab.core.cli_args import key_values
from brainlab.core.errors import ConfigError

KNOWN = {"results": None, "corpus": "nab"}


def test_key_values_over_defaults() -> None:
    assert key_values("t", ["results=r"], KNOWN) == {"results": "r", "corpus": "nab"}


def test_old_form_is_read_with_one_deprecation_line(capsys) -> None:  # noqa: ANN001
    assert key_values("t", ["r", "--corpus", "c"], KNOWN, old_positional="results") == {"results": "r", "corpus": "c"}
    assert capsys.readouterr().err.count("deprecated") == 1


@pytest.mark.parametrize(("argv", "match"), [
    (["result=r"], "unknown key 'result' \\(did you mean results\\?\\)"),
    (["corpus=c"], "results=<...> is required"),
    (["results=r", "stray"], "'stray' is not a key=value argument"),
])
def test_bad_arguments_are_one_line(argv: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        key_values("t", argv, KNOWN, old_positional="results")
