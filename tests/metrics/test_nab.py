"""NAB scoring against hand-computed cases and a literal per-row re-implementation of NAB's sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers.nab_corpus import write_corpus

from brainlab.core.errors import DataError
from brainlab.metrics import nab

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nab"


def one_file(cost: dict[str, float], detections: list[int], rows: int = 100) -> float:
    """NAB's unit case: 100 rows, a window on rows 40-49, no probation, threshold 0.5."""
    scores = np.zeros(rows)
    scores[detections] = 1.0
    sweep, window = nab.sweep_scores(rows, [(40, 49)], cost, probation=0)
    return nab.score_at(nab.Scored("f", scores, sweep, window, 1), 0.5, cost["fnWeight"])


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("standard", 0.867109), ("reward_low_FP_rate", 0.757111), ("reward_low_FN_rate", 0.867109)],
)
def test_nab_unit_case_tp_plus_fp(profile: str, expected: float) -> None:
    assert one_file(nab.PROFILES[profile], [42, 70]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("profile", "none"), [("standard", -1.0), ("reward_low_FP_rate", -1.0), ("reward_low_FN_rate", -2.0)]
)
def test_nab_unit_case_edges(profile: str, none: float) -> None:
    cost = nab.PROFILES[profile]
    assert one_file(cost, [40]) == pytest.approx(1.0)
    assert one_file(cost, []) == pytest.approx(none)


def test_scaled_sigmoid_and_probation_by_hand() -> None:
    assert float(nab.scaled_sigmoid(0.0)) == pytest.approx(0.0)
    assert float(nab.scaled_sigmoid(-1.0)) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert float(nab.scaled_sigmoid(3.5)) == -1.0
    assert nab.probation_length(1000) == 150
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(22695) == 750


def test_fp_before_first_window_costs_full_weight() -> None:
    sweep, window = nab.sweep_scores(20, [(10, 14)], nab.PROFILES["standard"], probation=2)
    assert window[0] == -1 and sweep[0] == pytest.approx(-0.11)  # row 2, before any window
    # right after the window: |15 - 14| / (5 - 1) = 0.25
    assert sweep[15 - 2] == pytest.approx(0.11 * (2 / (1 + math.exp(1.25)) - 1))


def test_windows_from_point_labels_nab_way() -> None:
    # 1000 rows, 2 labels: width int(0.1 * 1000 / 2) = 50, centred (+-25); probation 150
    assert nab.windows_from_labels(1000, [400, 800]) == [(375, 425), (775, 825)]
    # 3 labels: width 33 (+-16); overlapping windows merge; one touching probation is dropped
    assert nab.windows_from_labels(1000, [160, 400, 420]) == [(384, 436)]


def literal_score(
    scores: np.ndarray, windows: list[tuple[int, int]], cost: dict[str, float], threshold: float
) -> float:
    """NAB's per-row algorithm, written as a plain loop (the reference for the vectorised code)."""
    n = len(scores)
    probation = nab.probation_length(n)
    max_tp = 2 / (1 + math.exp(-5)) - 1

    def sig(y: float) -> float:
        return -1.0 if y > 3 else 2 / (1 + math.exp(5 * y)) - 1

    best = {k: -cost["fnWeight"] for k, (a, b) in enumerate(windows) if b >= probation}
    fp = 0.0
    for i in range(probation, n):
        inside = [k for k, (a, b) in enumerate(windows) if a <= i <= b]
        if inside:
            a, b = windows[inside[0]]
            if scores[i] >= threshold:
                best[inside[0]] = max(best[inside[0]], sig(-(b - i + 1) / (b - a + 1)) * cost["tpWeight"] / max_tp)
        elif scores[i] >= threshold:
            done = [(a, b) for a, b in windows if b < i]
            fp += (-1.0 if not done else sig(abs(i - done[-1][1]) / (done[-1][1] - done[-1][0]))) * cost["fpWeight"]
    return fp + sum(best.values())


def random_corpus(seed: int) -> tuple[dict[str, np.ndarray], dict[str, list[tuple[int, int]]]]:
    rng = np.random.default_rng(seed)
    results, windows = {}, {}
    for f in range(3):
        n = int(rng.integers(200, 400))
        results[f"cat/f{f}.csv"] = np.round(rng.random(n), 2)  # ties, as real detectors have
        windows[f"cat/f{f}.csv"] = [(100, 120), (200, 215)] if f else [(150, 190)]
    return results, windows


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_threshold_sweep_matches_literal_nab(profile: str) -> None:
    cost = nab.PROFILES[profile]
    results, windows = random_corpus(1)
    files = [nab.prepare(n, results[n], windows[n], cost) for n in sorted(results)]
    thresholds, totals = nab.scores_by_threshold(files, cost["fnWeight"])
    for t, total in zip(thresholds[::7], totals[::7], strict=True):
        ref = sum(literal_score(results[n], windows[n], cost, t) for n in results)
        assert total == pytest.approx(ref, abs=1e-9)
        assert sum(nab.score_at(f, t, cost["fnWeight"]) for f in files) == pytest.approx(ref, abs=1e-9)
    best_t, best = nab.best_threshold(files, cost["fnWeight"])
    assert best == pytest.approx(max(totals)) and best_t in thresholds
    assert best >= sum(literal_score(results[n], windows[n], cost, 0.5) for n in results) - 1e-9


def test_perfect_scores_100_and_null_scores_0() -> None:
    results, windows = random_corpus(2)
    perfect = {n: np.zeros(len(r)) for n, r in results.items()}
    for n, ws in windows.items():
        for a, _ in ws:
            perfect[n][a] = 1.0
    null = {n: np.full(len(r), 0.5) for n, r in results.items()}
    for profile, r in nab.score_corpus(perfect, windows).items():
        assert r.score == pytest.approx(100.0), profile
        assert r.null == pytest.approx(-nab.PROFILES[profile]["fnWeight"] * 5)
    for r in nab.score_corpus(null, windows).values():
        assert r.score == pytest.approx(0.0)
    noisy = nab.score_corpus(results, windows)["standard"]
    assert noisy.score < 100.0
    assert sum(noisy.per_file.values()) == pytest.approx(noisy.raw)


def test_cli_scores_nab_results_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = np.datetime64("2015-01-01T00:00:00") + np.arange(300) * np.timedelta64(300, "s")
    corpus = write_corpus(
        tmp_path / "nab",
        {"catA/a.csv": (stamps, np.arange(300.0)), "catB/b.csv": (stamps, np.ones(300))},
        windows={"catA/a.csv": [(100, 110)], "catB/b.csv": [(200, 230)]},
    )
    out = tmp_path / "results" / "mydet"
    for name, hit in (("catA/a.csv", 100), ("catB/b.csv", 200)):
        cat, file = name.split("/")
        (out / cat).mkdir(parents=True)
        score = np.zeros(300)
        score[hit] = 0.9
        text = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
        rows = "".join(f"{t},0,{s}\n" for t, s in zip(text, score, strict=True))
        (out / cat / f"mydet_{file}").write_text("timestamp,value,anomaly_score\n" + rows)
    assert nab.main([f"results={out}", f"corpus={corpus}"]) == 0
    printed = capsys.readouterr().out
    assert "| mydet | standard | 100.00 |" in printed and "SUBSET" not in printed
    assert nab.main([f"results={tmp_path / 'nothing'}", f"corpus={corpus}"]) == 2
    assert nab.main([str(out), "--corpus", str(tmp_path / "no_corpus")]) == 2, "the old form still parses"
    assert "git clone" in capsys.readouterr().err


def test_window_not_on_timestamps_is_refused() -> None:
    stamps = np.datetime64("2015-01-01T00:00:00") + np.arange(10) * np.timedelta64(300, "s")
    with pytest.raises(DataError, match="not on the file's timestamps"):
        nab.window_rows(stamps, [["2015-01-01 00:01:00", "2015-01-01 00:20:00"]], "x.csv")


@pytest.mark.skipif(not REAL.is_dir(), reason="real NAB corpus not present at ../shared/data/nab")
def test_real_corpus_windows_and_profiles() -> None:
    profiles = nab.load_profiles(REAL / "config" / "profiles.json")
    assert profiles == nab.PROFILES
    windows = json.loads((REAL / "labels" / "combined_windows.json").read_text())
    assert len(windows) == 58 and sum(len(w) for w in windows.values()) == 116
