"""The backend plug: one module (or package) plus one `conf/backend/<name>.yaml`.

The yaml's `_target_` is the module's neuron factory; the module defines `BACKEND = Backend(...)`, which states
everything else about it (creating one registers it). `discover()` reads `conf/backend/*.yaml` and imports each
yaml's module, so the factory's refusals, the NIR export and the benches find every backend without a list.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from brainlab.core.errors import BrainlabError, ConfigError
from brainlab.core.paths import config_dir
from brainlab.snn.factory import register_spiking_type

KINDS = ("iaf", "lif", "alif")
RESETS = ("subtract", "zero")


@dataclass(frozen=True)
class Support:
    """Which of the shared `model.net.neuron.*` settings a backend can express (the rest is refused)."""

    kinds: tuple[str, ...] = KINDS
    resets: tuple[str, ...] = RESETS
    recurrent: bool = True
    tau_syn_kinds: tuple[str, ...] = ("iaf", "lif")


@dataclass(frozen=True, eq=False)
class Backend:
    """One backend. `support=None`: it has its own knobs (not the shared neuron settings).

    `layers`: the classes its factory returns (registered as spiking); `to_sinabs(layer)`: its NIR mapping, the
    layer as a plain sinabs IAF/LIF/ExpLeak (None: no NIR); `requires()`: raises a ConfigError carrying the real
    import error when an optional dependency is missing; `linear(in, out, bias=True)`: its synapse layer (an
    `nn.Linear` subclass); `linear_options`: the factory's keywords (its yaml keys, e.g. `synapse`) that `linear`
    also takes; `bench_neuron`: fixed knobs the speed bench times instead of the bench's neuron.
    """

    name: str
    support: Support | None = Support()
    layers: tuple[type[nn.Module], ...] = ()
    to_sinabs: Callable[[nn.Module], nn.Module] | None = None
    requires: Callable[[], Any] | None = None
    devices: tuple[str, ...] = ("cpu", "cuda")
    linear: Callable[..., nn.Linear] = nn.Linear
    linear_options: tuple[str, ...] = ()
    bench_neuron: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        for cls in self.layers:
            register_spiking_type(cls)
        _REGISTRY[self.name] = self

    def check_available(self) -> None:
        """Raise the ConfigError (with the real import error) when its optional dependency is missing."""
        if self.requires is not None:
            self.requires()

    def unavailable(self) -> str | None:
        """Why it cannot be built here (the real import error), or None."""
        try:
            self.check_available()
        except BrainlabError as err:
            return str(err)
        return None

    def runs_on(self, device: str) -> bool:
        return device.split(":")[0] in self.devices


_REGISTRY: dict[str, Backend] = {}


def registered() -> dict[str, Backend]:
    """Every Backend created so far (its module was imported), by name."""
    return dict(_REGISTRY)


def find(name: str) -> Backend | None:
    """The backend called `name` (imported plugs first, then `conf/backend/`), or None."""
    if name not in _REGISTRY:
        try:
            discover()
        except ConfigError:
            return None
    return _REGISTRY.get(name)


def backends() -> dict[str, Backend]:
    """The discovered backends (`discover()`), or the imported ones when there is no config tree."""
    try:
        return discover()
    except ConfigError:
        return registered()


def discover(conf: str | Path | None = None) -> dict[str, Backend]:
    """`backend=<name>` -> Backend for every `conf/backend/<name>.yaml`, sorted by name."""
    from omegaconf import OmegaConf

    found: dict[str, Backend] = {}
    for path in sorted((Path(conf) if conf else config_dir()).joinpath("backend").glob("*.yaml")):
        target = str(OmegaConf.load(path).get("_target_", ""))
        module_name = target.rpartition(".")[0]
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(
                f"{path} names {target!r}, whose module failed to import ({type(err).__name__}: {err}); a backend "
                "imports its optional packages lazily"
            ) from err
        plug = getattr(module, "BACKEND", None)
        if not isinstance(plug, Backend):
            raise ConfigError(f"{path}: module {module_name} defines no `BACKEND = Backend(...)` (brainlab.snn.plug)")
        found[path.stem] = plug
    return found


def factory(name: str, conf: str | Path | None = None) -> Callable[..., nn.Module]:
    """The neuron factory `conf/backend/<name>.yaml` configures (its `_partial_` target, instantiated)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    return instantiate(OmegaConf.load((Path(conf) if conf else config_dir()) / "backend" / f"{name}.yaml"))


def backend_of(layer: nn.Module) -> Backend | None:
    """The backend whose layer class is `layer`'s (the most specific class wins)."""
    for cls in type(layer).__mro__:
        for plug in _REGISTRY.values():
            if cls in plug.layers:
                return plug
    return None


def unwrap_factory(factory: Callable[..., Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function under nested partials (`functools.partial`, Hydra's `_partial_` targets, a partial of either)
    and their keywords merged, the outer ones winning as they do in the call."""
    func, keywords, seen = factory, {}, 0
    while callable(getattr(func, "func", None)) and seen < 32:
        keywords = {**(getattr(func, "keywords", None) or {}), **keywords}
        func, seen = func.func, seen + 1
    return func, keywords


def plug_of(factory: Callable[..., Any]) -> Backend | None:
    """The Backend whose module defines `factory`'s function (under any partials), or None."""
    func, _ = unwrap_factory(factory)
    plug = getattr(sys.modules.get(getattr(func, "__module__", "") or ""), "BACKEND", None)
    return plug if isinstance(plug, Backend) else None


def linear_for(factory: Callable[..., Any]) -> Callable[..., nn.Linear]:
    """The synapse layer `linear(in, out, bias=True)` nets build beside `factory`'s neurons.

    The factory's plug's `linear`, given the factory's `linear_options` keywords (e.g. `backend.synapse`, also when
    set by a partial wrapped around the configured factory, as the benches do); `nn.Linear` for a factory without a
    plug (a test's function, a wrapped callable).
    """
    plug = plug_of(factory)
    if plug is None:
        return nn.Linear
    _, keywords = unwrap_factory(factory)
    options = {key: keywords[key] for key in plug.linear_options if key in keywords}
    return functools.partial(plug.linear, **options) if options else plug.linear


def supporting(pred: Callable[[Support], bool] = lambda support: True) -> str:
    """For a refusal: the discovered backends with the shared neuron settings whose `Support` passes `pred`, as
    `backend=a, backend=b` (`no backend` when none does)."""
    names = [name for name, plug in backends().items() if plug.support is not None and pred(plug.support)]
    return ", ".join(f"backend={name}" for name in names) or "no backend"


def no_nir(layer: nn.Module) -> ConfigError:
    """The refusal for a layer without a NIR equivalent, naming what NIR lacks and the backends that map theirs."""
    names = [name for name, plug in backends().items() if plug.to_sinabs is not None]
    adaptive = "alif" in type(layer).__name__.lower() or getattr(getattr(layer, "spec", None), "adaptive", False)
    missing = ("NIR 1.0's neurons (IF, LIF, CubaLIF) have a fixed threshold, ALIF's adapts" if adaptive else
               "no backend maps it to a sinabs IAF/LIF")
    return ConfigError(
        f"{type(layer).__name__} layers have no NIR equivalent ({missing}): export a model with IAF/LIF neurons, "
        f"recurrent or not ({', '.join(f'backend={n}' for n in names) or 'no backend has a NIR mapping'})"
    )
