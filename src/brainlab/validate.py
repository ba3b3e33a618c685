"""One validation pass at setup over everything a run's config holds, and the checkpoint check.

Each bad value stops the run before anything is built or written, with one `ConfigError` line that names the key
and the fix. Library checks are reused where they exist (torch's optimizer arguments, the scheduler's own), but
always answered in one line naming the key. A plug's unknown key is refused with the plug, its accepted keys and
the closest match; a metric name (`monitor`, `optimized_metric`, a callback's `monitor`) the phase never logs, with
the phase's metrics (its `logged_metrics`) and the closest match; a size preset without the model it sizes.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brainlab.core.cli_args import closest
from brainlab.core.errors import ConfigError

#: config subtrees that are data, not plugs (no unknown-key check below them)
NOT_PLUGS = ("hydra", "targets", "paths")
#: Lightning's precision names (Trainer(precision=...))
PRECISIONS = ("64", "32", "16", "bf16", "64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
STAGES = ("train", "val", "test")
ON_BAD_SAMPLE = ("error", "skip")


# --- value checks: each names the key and says what fits --------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(key: str, value: Any, low: int | None = None, hint: str = "") -> int:
    """`value` as an int >= `low`; anything else is one line naming the key."""
    if not _is_int(value) or (low is not None and value < low):
        what = "an integer" if low is None else "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ConfigError(f"{key} must be {what}, got {value!r}{hint}")
    return value


def number(key: str, value: Any, low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False, hint: str = "") -> float:
    """`value` as a finite number within [low, high] (ends open where asked); else one line naming the key."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high:g}"
        span = " and ".join(s for s in (lo, hi) if s)
        raise ConfigError(f"{key} must be a number{' ' + span if span else ''}, got {value!r}{hint}")
    return float(value)


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if str(value) not in choices:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}{closest(str(value), choices)}")
    return str(value)


# --- plugs: every `_target_` node takes only the arguments its class or function accepts ------------------------
def locate(target: str) -> Any | None:
    """The object a `_target_` names, or None when it cannot be imported here (instantiate then says why)."""
    from hydra._internal.utils import _locate

    try:
        return _locate(target)
    except Exception:  # noqa: BLE001 - an optional backend, a moved class: its own error comes at build time
        return None


#: plugs whose `**kwargs` go to a member they build (not up to `super().__init__`): the member's target and the
#: arguments the plug sets on it itself
FORWARDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "brainlab.data.multimodal_synthetic.MultimodalSyntheticDataModule":
        ("brainlab.data.multimodal_synthetic.MultimodalSynthetic", ("split",)),
}
#: plugs (by config key) whose `**kwargs` are filled elsewhere at call time (a `_partial_` factory), and where:
#: their own node takes only the named arguments
CALL_TIME_KWARGS = {"backend": "model.net.neuron"}


def accepted_keys(obj: Any, named_only: bool = False) -> list[str] | None:
    """The keyword arguments `obj` accepts (a class: along its `__init__`s while they pass `**kwargs` up), or None
    when it takes any keyword. `named_only`: its `**kwargs` come from elsewhere, only the named ones count."""
    names: list[str] = []
    if inspect.isclass(obj):
        chain = [k.__init__ for k in inspect.getmro(obj) if "__init__" in vars(k)]
        bare = obj.__new__ is object.__new__  # `object.__init__` at the end of the chain takes nothing
    else:
        chain, bare = [obj], False
    for function in chain:
        if function is object.__init__ and bare:
            return list(dict.fromkeys(names))
        try:
            params = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
        rest = [p.name for p in params if p.kind is p.VAR_KEYWORD]
        if not rest or named_only:
            return list(dict.fromkeys(names))
        if not passes_up(function, rest[0]):
            return forwarded(obj, names)
    return None


def forwarded(obj: Any, names: list[str]) -> list[str] | None:
    """`names` and the arguments of the member `obj` hands its `**kwargs` to (FORWARDS), or None (unknown)."""
    target = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    if target not in FORWARDS:
        return None  # `**kwargs` go somewhere else (a member, a dataset): any key may be right
    member, set_by_plug = FORWARDS[target]
    accepted = accepted_keys(locate(member)) if locate(member) is not None else None
    if accepted is None:
        return None
    return list(dict.fromkeys([*names, *(n for n in accepted if n not in set_by_plug)]))


def passes_up(function: Any, kwargs_name: str) -> bool:
    """Whether `function` (an `__init__`) hands its `**kwargs_name` to `super().__init__`."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return re.search(r"super\(\)\.__init__\([^)]*\*\*" + re.escape(kwargs_name) + r"\b", source) is not None


def check_plug_keys(key: str, node: Mapping[str, Any]) -> None:
    """Refuse a key the plug at `key` does not take: the key, the plug, its accepted keys, the closest match."""
    target = node.get("_target_")
    obj = locate(str(target)) if target else None
    if obj is None:
        return
    elsewhere = CALL_TIME_KWARGS.get(key)
    accepted = accepted_keys(obj, named_only=elsewhere is not None)
    if accepted is None:
        return
    for name in node:
        if str(name).startswith("_") or name in accepted:
            continue
        hint = f" (the settings it is called with go under {elsewhere}.*)" if elsewhere else ""
        raise ConfigError(
            f"{key}.{name} is not a setting of {key} ({target}){closest(str(name), accepted)}; "
            f"it accepts: {', '.join(accepted) or 'no settings'}{hint}")


def walk_plugs(key: str, node: Any) -> None:
    if isinstance(node, Mapping):
        if "_target_" in node:
            check_plug_keys(key, node)
        items = list(node.items())
        if not key:  # a group's own node (`cache`) before the copies interpolated into others (`data.cache`)
            items.sort(key=lambda item: not (isinstance(item[1], Mapping) and "_target_" in item[1]))
        for name, child in items:
            if not key and name in NOT_PLUGS:
                continue
            walk_plugs(f"{key}.{name}" if key else str(name), child)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            walk_plugs(f"{key}.{i}", child)


# --- groups --------------------------------------------------------------------------------------------------------
def check_seed(seed: Any) -> None:
    if seed is not None and (not _is_int(seed) or seed < 0 or seed >= 2**32):
        raise ConfigError(f"seed must be an integer in [0, 2**32), got {seed!r}: e.g. seed=42 (or seed=null for a "
                          "random one, recorded in record/run.json)")


def check_limit(key: str, value: Any) -> None:
    if value is None:
        return
    if _is_int(value):
        integer(key, value, 0, hint=": a number of batches, or a fraction in [0.0, 1.0]")
    else:
        number(key, value, 0.0, 1.0, hint=": a number of batches, or a fraction in [0.0, 1.0]")


def check_trainer(trainer: Mapping[str, Any], train: bool) -> None:
    """The `trainer.*` values Lightning would refuse late, in several lines, or not at all."""
    get = trainer.get
    if get("max_epochs") is not None:
        integer("trainer.max_epochs", get("max_epochs"), -1, hint=" (-1: no limit)")
    if get("min_epochs") is not None:
        integer("trainer.min_epochs", get("min_epochs"), 0)
    if get("max_steps") is not None:
        integer("trainer.max_steps", get("max_steps"), -1, hint=" (-1: no limit)")
    if get("min_steps") is not None:
        integer("trainer.min_steps", get("min_steps"), 0)
    devices = get("devices", "auto")
    if not (devices == "auto" or (_is_int(devices) and (devices > 0 or devices == -1))
            or (isinstance(devices, list) and devices and all(_is_int(d) and d >= 0 for d in devices))
            or (isinstance(devices, str) and re.fullmatch(r"-1|\d*[1-9]\d*|\d+(,\s*\d+)*,?", devices))):
        raise ConfigError(f"trainer.devices={devices!r} names no device: use a count >= 1, -1 for all of them, a "
                          "list of indices [0,1], or auto")
    accelerator = get("accelerator", "auto")
    if isinstance(accelerator, str):
        choice("trainer.accelerator", accelerator, ACCELERATORS)
    precision = get("precision")
    if precision is not None:
        choice("trainer.precision", str(precision), PRECISIONS)
    for stage in ("train", "val", "test", "predict"):
        check_limit(f"trainer.limit_{stage}_batches", get(f"limit_{stage}_batches"))
    limit = get("limit_train_batches")
    if train and limit is not None and limit == 0:
        raise ConfigError(f"trainer.limit_train_batches={limit!r} trains nothing: remove it (or give a positive "
                          "number); to test a checkpoint without training use eval.py ckpt_path=<.ckpt>")
    if get("check_val_every_n_epoch") is not None:
        integer("trainer.check_val_every_n_epoch", get("check_val_every_n_epoch"), 1, hint=" (or null)")
    interval = get("val_check_interval")
    if interval is not None:
        if _is_int(interval):
            integer("trainer.val_check_interval", interval, 1)
        else:
            number("trainer.val_check_interval", interval, 0.0, 1.0, open_low=True,
                   hint=": a fraction of an epoch in (0, 1] or a number of batches")
    if get("log_every_n_steps") is not None:
        integer("trainer.log_every_n_steps", get("log_every_n_steps"), 1)
    if get("accumulate_grad_batches") is not None:
        integer("trainer.accumulate_grad_batches", get("accumulate_grad_batches"), 1)
    if get("num_sanity_val_steps") is not None:
        integer("trainer.num_sanity_val_steps", get("num_sanity_val_steps"), -1, hint=" (-1: the whole val set)")
    if get("gradient_clip_val") is not None:
        number("trainer.gradient_clip_val", get("gradient_clip_val"), 0.0, hint=" (or null for no clipping)")
    if get("gradient_clip_algorithm") is not None:
        choice("trainer.gradient_clip_algorithm", get("gradient_clip_algorithm"), ("norm", "value"))
    deterministic = get("deterministic")
    if deterministic is not None and deterministic != "warn":
        boolean("trainer.deterministic", deterministic)
    for flag in ("enable_model_summary", "enable_checkpointing", "enable_progress_bar", "benchmark",
                 "inference_mode", "fast_dev_run"):
        if flag == "fast_dev_run" and _is_int(get(flag)):
            integer("trainer.fast_dev_run", get(flag), 0)
        elif get(flag) is not None:
            boolean(f"trainer.{flag}", get(flag))


OPTIMIZER_RANGES: dict[str, dict[str, Any]] = {
    "lr": {"low": 0.0, "open_low": True, "hint": ": e.g. model.optimizer.lr=1e-3"},
    "weight_decay": {"low": 0.0, "hint": " (0 for none)"},
    "momentum": {"low": 0.0, "high": 1.0, "open_high": True},
    "eps": {"low": 0.0, "open_low": True},
    "dampening": {"low": 0.0, "high": 1.0},
}


def check_optimizer(key: str, opt: Mapping[str, Any] | None):  # noqa: ANN201 - the optimizer (torch)
    """Numbers in range, then the optimizer itself built on one parameter (torch's own checks, one line)."""
    import torch

    if not opt:
        return None
    for name, ranges in OPTIMIZER_RANGES.items():
        if opt.get(name) is not None:
            number(f"{key}.{name}", opt[name], **ranges)
    betas = opt.get("betas")
    if betas is not None:
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise ConfigError(f"{key}.betas must be two numbers in [0, 1), got {betas!r}: e.g. [0.9, 0.999]")
        for i, beta in enumerate(betas):
            number(f"{key}.betas.{i}", beta, 0.0, 1.0, open_high=True)
    from hydra.utils import instantiate

    try:
        factory = instantiate(opt, _convert_="all")
        return factory(params=[torch.nn.Parameter(torch.zeros(1))])
    except Exception as exc:  # noqa: BLE001 - the library's own refusal, said in one line
        raise ConfigError(f"{key} ({opt.get('_target_')}) refused its settings: {root_message(exc)}: "
                          f"fix the {key}.* value it names") from exc


def check_scheduler(key: str, sched: Mapping[str, Any] | None, optimizer: Any) -> None:
    if not sched or optimizer is None:
        return
    if sched.get("warmup_steps") is not None:
        integer(f"{key}.warmup_steps", sched["warmup_steps"], 0)
    if sched.get("min_lr") is not None:
        number(f"{key}.min_lr", sched["min_lr"], 0.0)
    from hydra.utils import instantiate

    try:
        factory = instantiate(sched, _convert_="all")
        accepted = accepted_keys(factory.func) if hasattr(factory, "func") else None
        kwargs = {"total_steps": 100} if accepted is None or "total_steps" in accepted else {}
        factory(optimizer=optimizer, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{key} ({sched.get('_target_')}) refused its settings: {root_message(exc)}: "
                          f"fix the {key}.* value it names") from exc


NEURON_NUMBERS = {"spike_threshold": (0.0, True), "tau_mem": (0.0, True), "tau_syn": (0.0, True),
                  "tau_adapt": (0.0, True), "adapt_scale": (None, False), "min_v_mem": (None, False)}


def check_neuron(key: str, neuron: Any) -> None:
    """Types of the neuron knobs (the backend's own parse then checks their meaning)."""
    if not isinstance(neuron, Mapping):
        return
    for name, (low, open_low) in NEURON_NUMBERS.items():
        if neuron.get(name) is not None:
            number(f"{key}.{name}", neuron[name], low, open_low=open_low)
    for name in ("recurrent", "train_tau"):
        if neuron.get(name) is not None:
            boolean(f"{key}.{name}", neuron[name])


DATA_POSITIVE = ("batch_size", "n_channels", "n_time_bins", "samples_per_class", "test_samples_per_class",
                 "duration_us", "episodes_per_epoch")


def check_data(data: Mapping[str, Any]) -> None:
    if data.get("num_classes") is not None:
        integer("data.num_classes", data["num_classes"], 2, hint=": a classifier needs two classes or more")
    for name in DATA_POSITIVE:
        if data.get(name) is not None:
            integer(f"data.{name}", data[name], 1)
    for name in ("num_workers",):
        if data.get(name) is not None:
            integer(f"data.{name}", data[name], 0)
    for name in ("seed", "split_seed"):
        if data.get(name) is not None:
            integer(f"data.{name}", data[name], 0)
    if data.get("val_fraction") is not None:
        number("data.val_fraction", data["val_fraction"], 0.0, 1.0, open_high=True,
               hint=": the share of the training set held out for validation, e.g. 0.1")
    if data.get("on_bad_sample") is not None:
        choice("data.on_bad_sample", data["on_bad_sample"], ON_BAD_SAMPLE)
    for flag in ("pin_memory", "download", "persistent_workers", "drop_last"):
        if data.get(flag) is not None:
            boolean(f"data.{flag}", data[flag])


def check_metric_names(cfg: Mapping[str, Any]) -> None:
    """`monitor`, `optimized_metric` and every callback's `monitor`: `<stage>/<name>`, and one of the names the
    phase declares (`logged_metrics`) or a configured callback logs, where the phase declares them."""
    phase, by_callbacks = declared_metrics(cfg)
    declared = phase | by_callbacks
    callbacks = cfg.get("callbacks") if isinstance(cfg.get("callbacks"), Mapping) else {}
    named = [(key, cfg.get(key)) for key in ("monitor", "optimized_metric")]
    named += [(f"callbacks.{name}.monitor", entry.get("monitor")) for name, entry in callbacks.items()
              if isinstance(entry, Mapping) and "monitor" in entry]
    for key, name in named:
        if name is None:
            continue
        if not isinstance(name, str) or name.split("/", 1)[0] not in STAGES or "/" not in name:
            raise ConfigError(f"{key}={name!r} is not a metric name: use <stage>/<metric> with a stage of "
                              f"{', '.join(STAGES)}, e.g. val/acc")
        if phase and not is_logged(name, declared):
            target = str((cfg.get("model") or {}).get("_target_", "the model")).rsplit(".", 1)[-1]
            others = f"; the callbacks: {', '.join(sorted(by_callbacks))}" if by_callbacks else ""
            raise ConfigError(
                f"{key}={name} is never logged{closest(name, sorted(n for n in declared if '*' not in n))}: "
                f"the phase ({target}) logs {', '.join(sorted(phase))}{others}")
    mode = cfg.get("monitor_mode")
    if mode is not None:
        choice("monitor_mode", mode, ("min", "max"))


#: Lightning's names for a value logged with both on_step and on_epoch (`train/loss` -> `train/loss_step`, ...)
FORKS = ("_step", "_epoch")


def is_logged(name: str, declared: set[str]) -> bool:
    """Whether `name` is one of the declared names (`*` matches any part), or Lightning's per-step/epoch fork of
    one."""
    from fnmatch import fnmatchcase

    bases = [name] + [name[: -len(end)] for end in FORKS if name.endswith(end)]
    return any(fnmatchcase(base, pattern) for base in bases for pattern in declared)


def declared_metrics(cfg: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The metric names the phase declares (its class attribute `logged_metrics`; empty when it declares none) and
    those the configured callbacks log."""
    target = (cfg.get("model") or {}).get("_target_")
    phase = locate(str(target)) if target else None
    declared = set(getattr(phase, "logged_metrics", ()) or ())
    by_callbacks: set[str] = set()
    callbacks = cfg.get("callbacks")
    if isinstance(callbacks, Mapping):
        for entry in callbacks.values():
            if isinstance(entry, Mapping) and entry.get("_target_"):
                by_callbacks |= callback_metrics(str(entry["_target_"]), entry)
    return declared, by_callbacks


def callback_metrics(target: str, entry: Mapping[str, Any]) -> set[str]:
    """The names a callback logs: its class's `logged_metrics` (`{setting}` filled from the callback's settings, its
    defaults otherwise), or `lr-*` for Lightning's LearningRateMonitor."""
    cls = locate(target)
    if cls is not None and getattr(cls, "logged_metrics", None):
        settings = {name: p.default for name, p in inspect.signature(cls).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        settings.update({str(k): v for k, v in entry.items() if not str(k).startswith("_")})
        return {name.format(**settings) for name in cls.logged_metrics}
    if target.endswith("LearningRateMonitor"):
        return {"lr-*"}
    return set()


def check_loggers(loggers: Any) -> None:
    if loggers is None:
        return
    if not isinstance(loggers, Mapping):
        raise ConfigError(f"logger must be a dict of {{name: {{_target_: ...}}}} (or logger=null for none), "
                          f"got {type(loggers).__name__}")


def check_callbacks(callbacks: Any) -> None:
    if callbacks is None:
        return
    if not isinstance(callbacks, Mapping):
        raise ConfigError(f"callbacks must be a dict of {{name: {{_target_: ...}}}}, got {type(callbacks).__name__}")
    for name, entry in callbacks.items():
        if entry is None:
            continue
        if not isinstance(entry, Mapping) or "_target_" not in entry:
            raise ConfigError(f"callbacks.{name} needs a `_target_` (or callbacks.{name}=null to switch it off)")
        for step_key in ("every_n_train_steps", "every_n_epochs"):
            if entry.get(step_key) is not None:
                integer(f"callbacks.{name}.{step_key}", entry[step_key], 0, hint=" (0: off)")
        if entry.get("save_top_k") is not None:
            integer(f"callbacks.{name}.save_top_k", entry["save_top_k"], -1, hint=" (-1: keep all)")
        if entry.get("mode") is not None and "Checkpoint" in str(entry["_target_"]):
            choice(f"callbacks.{name}.mode", entry["mode"], ("min", "max"))


#: the phase the size presets (conf/preset/*.yaml, `scale.preset`) belong to
PRESET_PHASE = "brainlab.phases.brain_ai.BrainAIPhase"


def check_preset(cfg: DictConfig) -> None:
    """`preset=<size>` sizes the parts of the integrated model (model=brain_ai): with another model its keys
    (model.meta_init, model.net.vision, ...) fit nothing; said before they fail to resolve or instantiate."""
    if not OmegaConf.is_config(cfg):
        cfg = OmegaConf.create(cfg)
    preset = OmegaConf.select(cfg, "scale.preset", default=None, throw_on_resolution_failure=False)
    if preset is None:
        return
    target = str(OmegaConf.select(cfg, "model._target_", default="", throw_on_resolution_failure=False) or "")
    phase, owner = locate(target), locate(PRESET_PHASE)
    if target == PRESET_PHASE or (inspect.isclass(phase) and inspect.isclass(owner) and issubclass(phase, owner)):
        return
    raise ConfigError(
        f"preset={preset} belongs to model=brain_ai (it sizes the integrated model's parts), but this run's model is "
        f"{target.rsplit('.', 1)[-1] or 'not set'}: add model=brain_ai (or use experiment=brain_ai preset={preset}), "
        "or drop preset=")


def resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001 - an interpolation that does not resolve
        key = getattr(exc, "full_key", "") or "the config"
        raise ConfigError(f"{key} does not resolve: {root_message(exc)}: fix or remove the ${{...}} it uses") from exc


def validate_run(cfg: DictConfig, train: bool | None = None) -> dict[str, Any]:
    """Every check a run's config gets before anything is built or written; returns the resolved config."""
    check_preset(cfg)
    values = resolved(cfg)
    train = bool(values.get("train", True)) if train is None else train
    check_seed(values.get("seed"))
    for key in ("train", "test"):
        if values.get(key) is not None:
            boolean(key, values[key])
    for group in ("data", "model", "trainer"):
        if not isinstance(values.get(group), Mapping):
            raise ConfigError(f"{group} must be a config group (e.g. {group}=<name>), got {values.get(group)!r}")
    check_metric_names(values)
    check_loggers(values.get("logger"))
    check_callbacks(values.get("callbacks"))
    walk_plugs("", values)
    check_trainer(values["trainer"], train)
    check_data(values["data"])
    model = values["model"]
    net = model.get("net")
    if isinstance(net, Mapping):
        check_neuron("model.net.neuron", net.get("neuron"))
    if train:
        optimizer = check_optimizer("model.optimizer", model.get("optimizer"))
        check_scheduler("model.scheduler", model.get("scheduler"), optimizer)
    return values


# --- checkpoints -------------------------------------------------------------------------------------------------
def root_message(exc: BaseException) -> str:
    """The innermost cause's message, on one line."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's dict, or one line: empty, unreadable (truncated, not a torch file), not Lightning's."""
    import torch

    if path.stat().st_size == 0:
        raise ConfigError(f"ckpt_path={path} is empty (0 bytes; an interrupted copy?): point it at a complete "
                          ".ckpt, e.g. the run's checkpoints/last.ckpt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - zip errors, pickle errors, EOF: all mean the same to the user
        raise ConfigError(f"ckpt_path={path} cannot be read as a checkpoint ({root_message(exc)}): the file is "
                          "truncated or not a torch checkpoint; point it at another .ckpt of the run") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"ckpt_path={path} is not a Lightning checkpoint (no state_dict): point it at a .ckpt "
                          "written by train.py (checkpoints/*.ckpt of a run dir)")
    return checkpoint


def check_checkpoint(path: str | Path | None, model: Any) -> None:
    """A checkpoint file is checked before use: readable, a Lightning checkpoint, its weights shaped as `model`'s
    (neuron-state buffers ignored; older checkpoints keep loading through the phase's own rules)."""
    if not path or Path(path).is_dir():
        return
    path = Path(path)
    state = read_checkpoint(path)["state_dict"]
    ignored = set(model.neuron_state_buffers()) if hasattr(model, "neuron_state_buffers") else set()
    own = {k: v for k, v in model.state_dict().items() if k not in ignored}
    saved = {k: v for k, v in state.items() if k not in ignored and hasattr(v, "shape")}
    for key, tensor in own.items():
        if key in saved and tuple(saved[key].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"ckpt_path={path} does not fit this config: {key} is {list(saved[key].shape)} in the checkpoint "
                f"but {list(tensor.shape)} here; use the config the checkpoint was trained with (eval.py reads it "
                "from the run dir) or set the model.net.* / data.* values back")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        which = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ConfigError(
            f"ckpt_path={path} holds another model ({which}; {len(missing)} missing, {len(unexpected)} "
            "unexpected weights): use the model/net config the checkpoint was trained with")


__all__ = ["validate_run", "check_checkpoint", "read_checkpoint", "accepted_keys", "check_plug_keys",
           "root_message"]
