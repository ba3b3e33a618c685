"""Where the Hydra config tree (`conf/`) is: the one function every entry and bench asks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from brainlab.core.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

#: the checkout's `conf/`, beside `src/` (the package is installed editable from a checkout)
CHECKOUT_CONF = Path(__file__).resolve().parents[3] / "conf"


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config dir: `explicit` (`--config-dir`), else `$BRAINLAB_CONFIG_DIR`, else the checkout's `conf/`.

    Outside a checkout (no `conf/train.yaml` there) it is one ConfigError naming `--config-dir`.
    """
    chosen = explicit or os.environ.get("BRAINLAB_CONFIG_DIR")
    folder = Path(chosen).expanduser().resolve() if chosen else CHECKOUT_CONF
    if not (folder / "train.yaml").is_file():
        source = f"--config-dir={chosen}" if chosen else f"the checkout's conf/ ({folder})"
        raise ConfigError(
            f"no brainlab config tree at {source} (no train.yaml): run from a brainlab checkout or pass "
            "--config-dir=<path to conf/> (or set BRAINLAB_CONFIG_DIR)"
        )
    return folder


def compose_config(name: str, overrides: Sequence[str] = (), what: str | None = None) -> DictConfig:
    """`conf/<name>.yaml` composed with Hydra `key=value` overrides; a bad override is one ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    except HydraException as err:
        first = str(err).strip().splitlines()[0]
        label = what or name
        raise ConfigError(f"{label}: {first} (keys: see conf/{name}.yaml)") from err
