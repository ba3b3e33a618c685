"""`brainlab <command> [key=value ...]`: one console script for every tool.

Commands: `train`, `eval` (Hydra runs, as `python train.py` / `python eval.py`), `bench <name>`, `export`, `params`,
`measure` (a checkpoint's neuromorphic metrics on its test set) and `nab-score`. Every command takes Hydra-style
`key=value` arguments; `--config-dir=<conf/>` picks the config tree (default: the checkout's `conf/`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from brainlab.boundary import hydra_one_line_errors, report
from brainlab.core.errors import BrainlabError
from brainlab.core.paths import config_dir

#: command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("brainlab.cli", "hydra_train", "train a model: brainlab train experiment=shd_snn [key=value ...]"),
    "eval": ("brainlab.cli", "hydra_eval", "test a checkpoint: brainlab eval ckpt_path=<.ckpt> [key=value ...]"),
    "bench": ("brainlab.bench.__main__", "main",
              "run a benchmark: brainlab bench <loading|backends|spikes|htm|scale|event_step|gpu>"),
    "export": ("brainlab.export", "main", "export a checkpoint to NIR: brainlab export ckpt_path=<.ckpt>"),
    "params": ("brainlab.params", "main", "parameter table of a config: brainlab params preset=7b"),
    "measure": ("brainlab.measure", "main", "neuromorphic metrics of a checkpoint: brainlab measure ckpt_path=<.ckpt>"),
    "nab-score": ("brainlab.metrics.nab", "main", "score detector results on NAB: brainlab nab-score results=<dir>"),
}
#: the commands run under `@hydra.main` on the chosen config dir (their function takes it)
HYDRA_COMMANDS = ("train", "eval")


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "usage: brainlab [--config-dir=<conf/>] <command> [key=value ...]\n\ncommands:\n" + "\n".join(lines)


def split_config_dir(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--config-dir=X` / `--config-dir X` taken out of `argv`."""
    rest, chosen = [], None
    it = iter(argv)
    for arg in it:
        if arg.startswith("--config-dir="):
            chosen = arg.split("=", 1)[1]
        elif arg == "--config-dir":
            chosen = next(it, None)
        else:
            rest.append(arg)
    return chosen, rest


def hydra_entry(config_name: str, body: Callable, argv: Sequence[str], conf: str) -> int:
    """Run `body` under `@hydra.main` on `conf/<config_name>.yaml` with `argv` as Hydra's command line."""
    import hydra

    saved = sys.argv
    sys.argv = [f"brainlab {config_name}", *argv]
    try:
        with hydra_one_line_errors():
            hydra.main(version_base="1.3", config_path=conf, config_name=config_name)(body)()
    finally:
        sys.argv = saved
    return 0


def hydra_train(argv: Sequence[str], conf: str) -> int:
    from brainlab.train import main as train_main

    return hydra_entry("train", train_main, argv, conf)


def hydra_eval(argv: Sequence[str], conf: str) -> int:
    from brainlab.eval import main as eval_main

    return hydra_entry("eval", eval_main, argv, conf)


def main(argv: Sequence[str] | None = None) -> int:
    chosen, args = split_config_dir(list(sys.argv[1:] if argv is None else argv))
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    try:
        conf = str(config_dir(chosen))
    except BrainlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ["BRAINLAB_CONFIG_DIR"] = conf  # every compose of this process reads the same tree
    module, function, _ = COMMANDS[command]
    try:
        target = getattr(importlib.import_module(module), function)
        result = target(rest, conf) if command in HYDRA_COMMANDS else target(rest)
    except KeyboardInterrupt:
        print("stopped: interrupted (SIGINT)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one error boundary of every command: one line, exit status
        return report(exc)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
