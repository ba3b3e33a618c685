"""Arguments of the benches: `key=value` overrides of `conf/bench/<name>.yaml` (Hydra's style, as every tool)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config


def from_flags(name: str, argv: Sequence[str], renames: Mapping[str, str] | None = None) -> list[str]:
    """The old `--flag value ...` form as `key=value` overrides, said once as deprecated (kept for one release).

    `--a-b x y` -> `a_b=[x,y]`, `--a x` -> `a=x`, a bare `--flag` -> `flag=true`; `renames` maps a flag to a
    new key (`--trainer` -> `strategy`) or to a `key=value` override of its own (`--no-checkpointing` ->
    `checkpointing=false`).
    """
    args, out, key, values = list(argv), [], None, []

    def flush() -> None:
        if key is None:
            return
        renamed = (renames or {}).get(key, key.lstrip("-").replace("-", "_"))
        if "=" in renamed:
            out.append(renamed)
        elif not values:
            out.append(f"{renamed}=true")
        else:
            out.append(f"{renamed}={values[0] if len(values) == 1 else '[' + ','.join(values) + ']'}")

    flags = [a for a in args if a.startswith("--")]
    if not flags:
        return args
    for arg in args:
        if arg.startswith("--"):
            flush()
            key, values = arg, []
        elif key is None:
            out.append(arg)
        else:
            values.append(arg)
    flush()
    print(f"warning: bench {name}: --flags are deprecated and go in the next release; use {' '.join(out)}",
          file=sys.stderr)
    return out


def as_list(value: object) -> list:
    """A list-valued key given one value on the command line (`sizes=128x4`) as a one-item list."""
    return list(value) if isinstance(value, list | tuple | ListConfig) else [value]


def bench_config(name: str, doc: str | None, argv: Sequence[str],
                 load_config: Callable[[list[str]], DictConfig] | None = None,
                 renames: Mapping[str, str] | None = None, legacy_flags: bool = False) -> DictConfig | None:
    """The bench's config from `argv`; `--help` prints `doc` and the config and returns None. `--flags` are
    refused with the fix, or (`legacy_flags`, the benches that took them) translated with a deprecation line."""
    load = load_config or (lambda overrides: compose_config(f"bench/{name}", overrides, f"bench {name}"))
    args = list(argv)
    if any(a in ("-h", "--help") for a in args):
        print(doc)
        print(OmegaConf.to_yaml(load([])))
        return None
    if legacy_flags:
        args = from_flags(name, args, renames)
    flags = [a for a in args if a.startswith("--")]
    if flags:
        raise ConfigError(f"bench {name} takes key=value overrides of conf/bench/{name}.yaml, not {flags}")
    return load(args)
