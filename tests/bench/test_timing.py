"""The timing helper every bench shares, on fake timings: median and min, the spread, `noisy` for few repeats, a wide
spread or a busy machine, the load corrected for the bench's own share, and the interleaving order."""

from __future__ import annotations

import pytest

from brainlab.bench import timing
from brainlab.bench.timing import Load, claim, interleaved, judged, round_order, summarize

QUIET = Load(before=[0.1, 0.1, 0.1], after=[0.3, 0.2, 0.1], cores=2, seconds=30.0, own_cores=0.0)
BUSY = Load(before=[3.2, 3.0, 2.5], after=[3.4, 3.1, 2.6], cores=2, seconds=30.0, own_cores=0.0)


def test_median_min_quartiles_and_spread() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s["median_s"], s["min_s"], s["p25_s"], s["p75_s"], s["n"]) == (3.0, 1.0, 2.0, 4.0, 5)
    assert s["spread"] == pytest.approx((4.0 - 2.0) / 3.0, abs=1e-4)
    assert summarize([]) == {"median_s": None, "min_s": None, "p25_s": None, "p75_s": None, "spread": None, "n": 0}
    assert summarize([2.0])["spread"] == 0.0


def test_noisy_for_few_repeats_a_wide_spread_or_a_busy_machine() -> None:
    tight = [1.00, 1.01, 0.99, 1.02, 1.00]
    assert judged(tight, QUIET)["noisy"] is False and judged(tight, QUIET)["why"] == []
    assert judged(tight[:4], QUIET)["why"] == ["4 repeats < 5"]
    wide = [1.0, 1.5, 0.7, 1.3, 1.0]
    assert judged(wide, QUIET)["noisy"] and judged(wide, QUIET)["why"][0].startswith("spread 0.")
    assert judged(tight, BUSY)["why"] == ["load 3.40 from other processes > 1 (2 cores)"]
    assert judged(tight)["noisy"] is False, "no load known: judged on the samples alone"


def test_the_load_after_the_rounds_leaves_out_the_benchs_own_share() -> None:
    # two busy cores of its own for ten minutes: the 1-minute average after is all the bench's
    own = Load(before=[0.2, 0.2, 0.2], after=[2.1, 1.5, 0.8], cores=2, seconds=600.0, own_cores=2.0)
    assert own.others() == pytest.approx(0.2, abs=0.01) and not own.busy()
    # ... the same load after a run of 6 s is someone else's
    short = Load(before=[0.2, 0.2, 0.2], after=[2.1, 1.5, 0.8], cores=2, seconds=6.0, own_cores=2.0)
    assert short.others() == pytest.approx(2.1 - 2.0 * 0.0952, abs=0.01) and short.busy()
    assert Load(before=None, after=None).others() is None and not Load(before=None, after=None).busy()
    assert "busy" in BUSY.describe() and "quiet" in QUIET.describe()


def test_rounds_interleave_every_implementation_once_a_round_the_order_rotating() -> None:
    calls: list[str] = []

    def impl(name: str):  # noqa: ANN202
        return lambda: calls.append(name)

    rounds = interleaved({n: impl(n) for n in "abc"}, rounds=4, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab") + list("abc")
    assert rounds.order == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert all(len(rounds.samples[n]["seconds"]) == 4 and min(rounds.samples[n]["seconds"]) >= 0 for n in "abc")
    assert round_order(["x"], 5) == ["x"] and round_order([], 1) == []


def test_a_call_may_return_its_own_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "load_average", lambda: [0.0, 0.0, 0.0])
    steps = iter([[0.10, 0.11, 0.10], [0.10, 0.10, 0.12]])
    fake = {"pair": lambda: {"forward_s": 1.0, "total_s": 3.0}, "steps": lambda: {"step_s": next(steps)},
            "one": lambda: 2.0}
    rounds = interleaved(fake, rounds=2, warmup=0)
    assert rounds.samples["pair"] == {"forward_s": [1.0, 1.0], "total_s": [3.0, 3.0]}
    assert rounds.samples["steps"]["step_s"] == [0.10, 0.11, 0.10, 0.10, 0.10, 0.12]
    assert rounds.summary("steps", "step_s")["n"] == 6 and not rounds.summary("steps", "step_s")["noisy"]
    assert rounds.summary("one")["median_s"] == 2.0 and rounds.noisy("one"), "2 rounds < 5"
    fields = rounds.fields()
    keys = {"load_before", "load_after", "cores", "others_load", "rounds", "thresholds", "noisy", "noisy_why"}
    assert keys <= set(fields) and fields["rounds"] == 2 and fields["noisy"]
    assert fields["noisy_why"] == ["fewer than 5 repeats in 3 of 4 results"]


def test_fields_record_the_speed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "load_average", lambda: [0.0, 0.0, 0.0])
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2,+fma,-prefer-256-bit")
    settings = interleaved({"a": lambda: 1.0}, rounds=1, warmup=0).fields()["speed_settings"]
    assert settings["GLIBC_TUNABLES"] == "glibc.malloc.trim_threshold=1" and "LD_PRELOAD" not in settings
    assert settings["numba_vectors"] == "full width (brainlab.core.jit)"
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2")
    assert timing.speed_settings()["numba_vectors"] == "NUMBA_CPU_FEATURES set by the user"
    monkeypatch.delenv("NUMBA_CPU_FEATURES")
    assert timing.speed_settings()["numba_vectors"] == "numba default"


def test_claims_give_way_to_noisy() -> None:
    assert claim(1.234, False) == "1.23" and claim(1.234, True) == "noisy" and claim(None, False) == "-"
    assert claim(0.5, False, "{:.0%}") == "50%"


def test_bad_rounds_are_refused() -> None:
    from brainlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="rounds must be a positive integer"):
        interleaved({"a": lambda: None}, rounds=0)
    with pytest.raises(ConfigError, match="warmup=-1 must be >= 0"):
        interleaved({"a": lambda: None}, rounds=1, warmup=-1)
