"""Timing hygiene every bench shares: the machine's load before and after, interleaved rounds, median and min per
implementation, and `noisy` where a figure cannot carry a claim.

    rounds = interleaved({"floor": step_floor, "fused": step_fused}, rounds=7, warmup=1)
    rounds.summary("fused")   # {"median_s", "min_s", "p25_s", "p75_s", "spread", "n", "noisy", "why"}
    record.update(rounds.fields())   # load_before, load_after, cores, others_load, rounds, thresholds, noisy, ...

**Interleaving.** Every implementation runs once per round, `rounds` rounds, after `warmup` untimed calls each.
Round k starts at implementation k mod n (the order rotates), so a machine that grows busier, or a cache that one
implementation warms for the next, falls on all of them alike and none always runs first. An implementation's call
returns its own measurement (seconds; `{metric: seconds}`; a list of seconds when one call holds several, e.g. the
steps of a training run) or None, and then the call itself is timed here.

**Noisy.** A result is marked `noisy` (and the benches print `noisy` in place of a ratio or a met / not met verdict)
when any of these holds, each a module constant:

- fewer than `MIN_REPEATS` = 5 samples;
- spread above `MAX_SPREAD` = 0.10, the spread being the interquartile range over the median,
  `(p75 - p25) / median` (robust to one stray sample, which min and max are not);
- the machine was busy: the load other processes put on it exceeded the usable cores minus `LOAD_MARGIN` = 1
  (on a 2-core machine: above 1). That load is the 1-minute load average (`os.getloadavg`) before the rounds, or
  after them less this process's own part of it, whichever is higher. This process's part is its average number
  of busy cores over the rounds (`os.times`, waited-for children included) times the share of the 1-minute window
  the rounds filled, `1 - exp(-seconds / 60)`, as the kernel's load average is a 1-minute exponential average;
  an estimate, so the JSON keeps the raw `load_before` and `load_after` too.

A run is `noisy` when any of its results is. The numbers are written either way (a noisy median is still the
median); only the claims drawn from them are withheld.

**Speed settings.** The JSON also records what changes a CPU run's speed but not its numbers (`speed_settings()`):
numba's vector width (`brainlab.core.jit`) and those of `SPEED_ENV` that are set (the C allocator's tunables or a
preloaded allocator, which move the dense floor between ~70 and ~100 ms on the blog model; the kernels' threads).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from brainlab.core.checks import positive_int
from brainlab.core.errors import ConfigError
from brainlab.core.jit import numba_vectors

MIN_REPEATS = 5
MAX_SPREAD = 0.10
LOAD_MARGIN = 1.0
LOAD_WINDOW_S = 60.0
THRESHOLDS = {"min_repeats": MIN_REPEATS, "max_spread": MAX_SPREAD, "load_margin_cores": LOAD_MARGIN,
              "spread": "(p75 - p25) / median", "load": "others' 1-min load average > cores - load_margin_cores"}
NOISY = "noisy"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, or None where the OS has none."""
    try:
        return [round(v, 3) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_seconds() -> float:
    """CPU seconds this process and its waited-for children have used (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class Load:
    """The machine's load around a timed span: load averages before and after, and this process's own use."""

    before: list[float] | None
    after: list[float] | None = None
    cores: int = field(default_factory=usable_cores)
    seconds: float = 0.0
    own_cores: float = 0.0

    def others(self) -> float | None:
        """The load other processes put on the machine (module docstring); None without load averages."""
        if self.before is None or self.after is None:
            return None
        own = self.own_cores * (1.0 - math.exp(-self.seconds / LOAD_WINDOW_S))
        return round(max(self.before[0], self.after[0] - own), 3)

    def busy(self) -> bool:
        others = self.others()
        return others is not None and others > self.cores - LOAD_MARGIN

    def why(self) -> list[str]:
        """The load reason for `noisy`, or none."""
        if not self.busy():
            return []
        return [f"load {self.others():.2f} from other processes > {self.cores - LOAD_MARGIN:g} ({self.cores} cores)"]

    def fields(self) -> dict[str, Any]:
        return {"load_before": self.before, "load_after": self.after, "cores": self.cores,
                "others_load": self.others(), "own_cores": round(self.own_cores, 3), "timed_s": round(self.seconds, 3)}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Load:
        """The Load a bench's JSON fields describe (`fields()`'s inverse)."""
        return cls(before=fields.get("load_before"), after=fields.get("load_after"), cores=int(fields.get("cores", 1)),
                   seconds=float(fields.get("timed_s", 0.0)), own_cores=float(fields.get("own_cores", 0.0)))

    def describe(self) -> str:
        """One line for the printed table: the load before / after and whether the machine was busy."""
        if self.before is None or self.after is None:
            return "load: not available on this OS"
        state = "busy: ratios and verdicts withheld" if self.busy() else "quiet enough"
        return (f"load {self.before[0]:.2f} before, {self.after[0]:.2f} after ({self.cores} cores, this bench "
                f"~{self.own_cores:.1f} of them, others ~{self.others():.2f}): {state}")


@contextmanager
def measured_load() -> Iterator[Load]:
    """`with measured_load() as load: ...`: `load` is filled in when the block ends."""
    load = Load(before=load_average())
    start, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield load
    finally:
        load.seconds = time.perf_counter() - start
        load.own_cores = (cpu_seconds() - cpu) / load.seconds if load.seconds > 0 else 0.0
        load.after = load_average()


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median, min, quartiles, spread ((p75 - p25) / median) and count of `samples` (None for the figures of none)."""
    xs = sorted(float(s) for s in samples)
    if not xs:
        return {"median_s": None, "min_s": None, "p25_s": None, "p75_s": None, "spread": None, "n": 0}
    median = statistics.median(xs)
    p25, _, p75 = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else (xs[0], xs[0], xs[0])
    spread = (p75 - p25) / median if median > 0 else 0.0
    return {"median_s": median, "min_s": xs[0], "p25_s": p25, "p75_s": p75, "spread": round(spread, 4),
            "n": len(xs)}


def noisy_why(summary: Mapping[str, Any], load: Load | None = None) -> list[str]:
    """Why a summary cannot carry a claim: few repeats, a wide spread, a busy machine (none: it can)."""
    why = []
    if summary["n"] < MIN_REPEATS:
        why.append(f"{summary['n']} repeats < {MIN_REPEATS}")
    if summary["spread"] is not None and summary["spread"] > MAX_SPREAD:
        why.append(f"spread {summary['spread']:.2f} > {MAX_SPREAD:g}")
    return why + (load.why() if load is not None else [])


def judged(samples: Sequence[float], load: Load | None = None) -> dict[str, Any]:
    """`summarize(samples)` with `noisy` and its reasons (`why`)."""
    summary = summarize(samples)
    why = noisy_why(summary, load)
    return {**summary, "noisy": bool(why), "why": why}


def claim(value: float | None, noisy: bool, fmt: str = "{:.2f}") -> str:
    """A ratio or verdict as printed: `noisy` in its place when it cannot be claimed, `-` when there is none."""
    if value is None:
        return "-"
    return NOISY if noisy else fmt.format(value)


def round_order(names: Sequence[str], index: int) -> list[str]:
    """The implementations in the order round `index` runs them: rotated to start at `index` mod n."""
    names = list(names)
    if not names:
        return []
    k = index % len(names)
    return names[k:] + names[:k]


Measure = Callable[[], "float | Sequence[float] | Mapping[str, float | Sequence[float]] | None"]


@dataclass
class Rounds:
    """The samples of an interleaved run: `samples[name][metric]`, the order each round ran, the load around it."""

    samples: dict[str, dict[str, list[float]]]
    order: list[list[str]]
    load: Load
    rounds: int
    warmup: int
    metric: str = "seconds"

    def summary(self, name: str, metric: str | None = None) -> dict[str, Any]:
        """Median, min, spread, n, `noisy` and `why` of one implementation's metric."""
        return judged(self.samples[name].get(metric or self.metric, []), self.load)

    def summaries(self, name: str) -> dict[str, dict[str, Any]]:
        return {metric: judged(values, self.load) for metric, values in self.samples[name].items()}

    def noisy(self, name: str) -> bool:
        found = self.summaries(name)
        return not found or any(s["noisy"] for s in found.values())

    def judged(self) -> list[dict[str, Any]]:
        """Every implementation's every metric, judged."""
        return [s for name in self.samples for s in self.summaries(name).values()]

    def fields(self) -> dict[str, Any]:
        """What every bench's JSON carries about the run (module docstring)."""
        why = overall_why(self.judged(), self.load)
        return {**self.load.fields(), "rounds": self.rounds, "warmup": self.warmup, "order": "rotating",
                "thresholds": THRESHOLDS, "noisy": bool(why) or not self.samples, "noisy_why": why,
                "speed_settings": speed_settings()}


#: environment variables that change a CPU run's speed, never its numbers: recorded in every bench's JSON when set
SPEED_ENV = ("GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_ARENA_MAX", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
             "BRAINLAB_KERNEL_THREADS", "BRAINLAB_NUMBA_VECTORS")


def speed_settings() -> dict[str, Any]:
    """numba's vector width and the `SPEED_ENV` variables set in this process."""
    return {"numba_vectors": numba_vectors(), **{name: os.environ[name] for name in SPEED_ENV if name in os.environ}}


def overall_why(judged_results: Sequence[Mapping[str, Any]], load: Load | None = None) -> list[str]:
    """A run's reasons for `noisy`, one a kind: how many of its results had few repeats or a wide spread, and the
    load (the machine's, over the whole run)."""
    n = len(judged_results)
    few = [s for s in judged_results if s["n"] < MIN_REPEATS]
    wide = [s for s in judged_results if s["spread"] is not None and s["spread"] > MAX_SPREAD]
    why = []
    if few:
        why.append(f"fewer than {MIN_REPEATS} repeats in {len(few)} of {n} results")
    if wide:
        top = max(s["spread"] for s in wide)
        why.append(f"spread above {MAX_SPREAD:g} in {len(wide)} of {n} results (up to {top:.2f})")
    if load is not None and load.busy():
        return why + load.why()
    busy = [s for s in judged_results if any(w.startswith("load") for w in s["why"])]
    if busy:
        why.append(f"the machine was busy during {len(busy)} of {n} results")
    return why


def _record(into: dict[str, list[float]], got: Any, metric: str) -> None:
    values = got if isinstance(got, Mapping) else {metric: got}
    for key, value in values.items():
        bucket = into.setdefault(key, [])
        if isinstance(value, int | float):
            bucket.append(float(value))
        else:
            bucket.extend(float(v) for v in value)


def interleaved(impls: Mapping[str, Measure], rounds: int, warmup: int = 1, metric: str = "seconds") -> Rounds:
    """Run every implementation once per round, `rounds` rounds (the order rotating), after `warmup` untimed
    calls each; the load is measured around it all (warm-up included). A call's own measurement (or, when it returns
    None, its wall time) goes under `metric`, or under its own keys when it returns a mapping."""
    positive_int("rounds", rounds)
    if warmup < 0:
        raise ConfigError(f"warmup={warmup} must be >= 0")
    names = list(impls)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    order: list[list[str]] = []
    with measured_load() as measured:
        for name in names:
            for _ in range(warmup):
                impls[name]()
        for index in range(rounds):
            order.append(round_order(names, index))
            for name in order[-1]:
                start = time.perf_counter()
                got = impls[name]()
                _record(samples[name], time.perf_counter() - start if got is None else got, metric)
    return Rounds(samples, order, measured, rounds, warmup, metric)


def combined(load: Load, parts: Sequence[Rounds]) -> dict[str, Any]:
    """The run-level fields of a bench made of several interleaved runs (one per case): the load around them all,
    their rounds, and `noisy` where any of them is or the machine was busy over the whole."""
    why = overall_why([s for part in parts for s in part.judged()], load)
    first = parts[0] if parts else None
    return {**load.fields(), "rounds": first.rounds if first else 0, "warmup": first.warmup if first else 0,
            "order": "rotating", "thresholds": THRESHOLDS, "noisy": bool(why) or not parts, "noisy_why": why,
            "speed_settings": speed_settings()}
