"""Arguments of the config-driven benches: `key=value` overrides of `conf/bench/<name>.yaml`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from brainlab.core.errors import ConfigError


def bench_config(name: str, doc: str | None, argv: Sequence[str],
                 load_config: Callable[[list[str]], DictConfig]) -> DictConfig | None:
    """The bench's config from `argv`; `--help` prints `doc` and the config and returns None; any other `--flag`
    is refused with the fix."""
    args = list(argv)
    if any(a in ("-h", "--help") for a in args):
        print(doc)
        print(OmegaConf.to_yaml(load_config([])))
        return None
    flags = [a for a in args if a.startswith("--")]
    if flags:
        raise ConfigError(f"bench {name} takes key=value overrides of conf/bench/{name}.yaml, not {flags}")
    return load_config(args)
