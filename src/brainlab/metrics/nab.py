"""NAB scoring, written from the Numenta Anomaly Benchmark's published definition (Lavin & Ahmad 2015).

Per file: the first `min(floor(0.15 * rows), 750)` rows are probationary and not scored. Every other row gets a
sweep score: inside an anomaly window (left..right, width = right - left + 1) a detection earns
`scaledSigmoid(-(right - i + 1) / width) * tpWeight / scaledSigmoid(-1)`; outside windows it costs
`-fpWeight` before the first window and `scaledSigmoid(|i - prevRight| / (prevWidth - 1)) * fpWeight` after
one, with `scaledSigmoid(y) = 2 / (1 + e^(5y)) - 1` (-1 for y > 3). A detection is `anomaly_score >= threshold`;
each window keeps its best detection or `-fnWeight` if it has none; false positives add up. The threshold is
swept over the whole corpus (every distinct anomaly score) per profile and the best kept; the final score is
`100 * (raw - raw_null) / (raw_perfect - raw_null)` (null: a constant 0.5 detector, swept the same way;
perfect: `tpWeight` per window).

`brainlab nab-score results=RESULTS_DIR [corpus=NAB_ROOT]` (or `python -m brainlab.metrics.nab ...`) scores a
detector's results in NAB's layout (`RESULTS_DIR/<category>/<detector>_<file>.csv`, columns
`timestamp,value,anomaly_score,...`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainlab.core.cli_args import key_values
from brainlab.core.errors import ConfigError, DataError
from brainlab.core.nab_windows import (  # noqa: F401 - shared with brainlab.data.nab, importable from here
    PROBATION_PERCENT,
    PROFILES,
    WINDOW_PERCENT,
    probation_length,
    window_rows,
    windows_from_labels,
)

# the metric names brainlab logs for each profile
METRIC_NAMES = {
    "standard": "nab_standard",
    "reward_low_FP_rate": "nab_reward_low_fp",
    "reward_low_FN_rate": "nab_reward_low_fn",
}


def load_profiles(path: Path | str | None = None) -> dict[str, dict[str, float]]:
    """Cost matrices from NAB's `config/profiles.json` (the built-in copy when `path` is None)."""
    if path is None:
        return {k: dict(v) for k, v in PROFILES.items()}
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        return {name: {k: float(v) for k, v in p["CostMatrix"].items()} for name, p in raw.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read NAB profiles {path}: {exc}; restore it from the NAB repository") from exc


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """`2 / (1 + e^(5y)) - 1`, and -1 for y > 3 (far past a window)."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, val)


def sweep_scores(
    n_rows: int, windows: Sequence[tuple[int, int]], cost: Mapping[str, float], probation: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per scored row (rows >= probation): the weighted score a detection there would earn, and its window
    index (-1 outside windows)."""
    i = np.arange(n_rows, dtype=np.float64)
    window = np.full(n_rows, -1, dtype=np.int64)
    score = np.empty(n_rows)
    max_tp = float(scaled_sigmoid(-1.0))
    rights = np.array([r for _, r in windows], dtype=np.int64)
    widths = np.array([r - left + 1 for left, r in windows], dtype=np.float64)
    for k, (left, right) in enumerate(windows):
        window[left : right + 1] = k
        pos = -(right - i[left : right + 1] + 1) / widths[k]
        score[left : right + 1] = scaled_sigmoid(pos) * cost["tpWeight"] / max_tp
    outside = window < 0
    prev = np.searchsorted(rights, i[outside], side="left") - 1  # last window ending before row i
    fp = np.full(prev.shape, -1.0)
    after = prev >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(i[outside][after] - rights[prev[after]]) / (widths[prev[after]] - 1.0)
    fp[after] = scaled_sigmoid(np.nan_to_num(rel, nan=np.inf))
    score[outside] = fp * cost["fpWeight"]
    return score[probation:], window[probation:]


@dataclass
class Scored:
    """A file ready for sweeping: its anomaly scores and sweep scores (scored rows only)."""

    name: str
    anomaly: np.ndarray
    sweep: np.ndarray
    window: np.ndarray
    n_windows: int  # windows in the label file (for the perfect score)


def prepare(
    name: str,
    anomaly: np.ndarray,
    windows: Sequence[tuple[int, int]],
    cost: Mapping[str, float],
    probation_percent: float = PROBATION_PERCENT,
) -> Scored:
    anomaly = np.asarray(anomaly, dtype=np.float64)
    probation = probation_length(len(anomaly), probation_percent)
    sweep, window = sweep_scores(len(anomaly), windows, cost, probation)
    return Scored(name, anomaly[probation:], sweep, window, len(windows))


def scores_by_threshold(files: Sequence[Scored], fn_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw corpus score for every threshold (1.1 = nothing detected, then each distinct score, descending)."""
    anomaly = np.concatenate([f.anomaly for f in files]) if files else np.zeros(0)
    sweep = np.concatenate([f.sweep for f in files]) if files else np.zeros(0)
    offsets = np.cumsum([0] + [int(f.window.max(initial=-1)) + 1 for f in files])
    window = (
        np.concatenate([np.where(f.window >= 0, f.window + offsets[k], -1) for k, f in enumerate(files)])
        if files
        else np.zeros(0, dtype=np.int64)
    )
    base = -fn_weight * len(np.unique(window[window >= 0]))  # windows present among scored rows start as misses
    order = np.argsort(-anomaly, kind="stable")
    a, v, w = anomaly[order], sweep[order], window[order]
    inc = np.where(w < 0, v, 0.0)
    in_win = np.flatnonzero(w >= 0)
    if in_win.size:  # a window's part = max(-fnWeight, best detection so far): grouped running max
        grp = in_win[np.argsort(w[in_win], kind="stable")]
        _, first = np.unique(w[grp], return_index=True)
        gid = np.zeros(grp.size, dtype=np.int64)
        gid[first[1:]] = 1
        gid = np.cumsum(gid)
        best = np.maximum.accumulate(np.maximum(v[grp], -fn_weight) + 10.0 * gid) - 10.0 * gid
        before = np.concatenate([[-fn_weight], best[:-1]])
        before[first] = -fn_weight
        inc[grp] = best - before
    total = base + np.cumsum(inc)
    last = np.flatnonzero(np.append(a[1:] != a[:-1], True)) if a.size else np.zeros(0, dtype=np.int64)
    return np.concatenate([[1.1], a[last]]), np.concatenate([[base], total[last]])


def score_at(f: Scored, threshold: float, fn_weight: float) -> float:
    """One file's raw score with detections `anomaly >= threshold`."""
    hit = f.anomaly >= threshold
    total = float(f.sweep[hit & (f.window < 0)].sum())
    for k in np.unique(f.window[f.window >= 0]):
        sel = hit & (f.window == k)
        total += max(-fn_weight, float(f.sweep[sel].max())) if sel.any() else -fn_weight
    return total


def best_threshold(files: Sequence[Scored], fn_weight: float) -> tuple[float, float]:
    """(threshold, raw score) maximising the corpus score; ties go to the higher threshold, as in NAB."""
    thresholds, totals = scores_by_threshold(files, fn_weight)
    k = int(np.argmax(totals))
    return float(thresholds[k]), float(totals[k])


@dataclass
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    score: float
    per_file: dict[str, float]


def score_corpus(
    results: Mapping[str, np.ndarray],
    windows: Mapping[str, Sequence[tuple[int, int]]],
    profiles: Mapping[str, Mapping[str, float]] | None = None,
    probation_percent: float = PROBATION_PERCENT,
) -> dict[str, ProfileResult]:
    """NAB scores per profile. `results[name]`: a detector's anomaly scores per row; `windows[name]`: row
    windows (left, right) of that file."""
    profiles = profiles or PROFILES
    missing = sorted(set(results) - set(windows))
    if missing:
        raise DataError(f"no NAB windows for {missing[:3]}: is labels/combined_windows.json from the same corpus?")
    out = {}
    for profile, cost in profiles.items():
        fn = cost["fnWeight"]
        files = [prepare(n, results[n], windows[n], cost, probation_percent) for n in sorted(results)]
        nulls = [
            prepare(n, np.full(len(results[n]), 0.5), windows[n], cost, probation_percent) for n in sorted(results)
        ]
        threshold, raw = best_threshold(files, fn)
        _, null = best_threshold(nulls, fn)
        perfect = cost["tpWeight"] * sum(f.n_windows for f in files)
        denom = perfect - null
        score = 100.0 * (raw - null) / denom if denom else float("nan")
        per_file = {f.name: score_at(f, threshold, fn) for f in files}
        out[profile] = ProfileResult(profile, threshold, raw, null, perfect, score, per_file)
    return out


def scoreboard(results: Mapping[str, ProfileResult], detector: str = "detector") -> str:
    """NAB's final scoreboard as markdown."""
    lines = ["| detector | profile | score | threshold | raw | null | perfect |", "|---|---|---|---|---|---|---|"]
    for r in results.values():
        lines.append(
            f"| {detector} | {r.profile} | {r.score:.2f} | {r.threshold:.6g} | {r.raw:.3f} | "
            f"{r.null:.3f} | {r.perfect:.3f} |"
        )
    return "\n".join(lines) + "\n"


# --- reading NAB results (the CLI) --------------------------------------------------------------------
def read_results_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, anomaly_score) of one NAB results file."""
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [(r["timestamp"], float(r["anomaly_score"])) for r in reader]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a NAB results file (timestamp,value,anomaly_score,...): {exc}") from exc
    stamps = np.array([r[0] for r in rows], dtype="datetime64[us]")
    return stamps, np.array([r[1] for r in rows], dtype=np.float64)


def find_results(results_dir: Path, names: Sequence[str]) -> dict[str, Path]:
    """`<category>/<name>.csv` -> `results_dir/<category>/*_<name>.csv` for the files present."""
    found = {}
    for name in names:
        category, file = name.split("/", 1)
        hits = sorted((results_dir / category).glob(f"*_{file}"))
        if hits:
            found[name] = hits[0]
    return found


def score_results_dir(results_dir: Path | str, corpus: Path | str) -> tuple[dict[str, ProfileResult], int, int]:
    """Score NAB-layout results against a corpus' windows and profiles; returns (results, scored, total)."""
    results_dir, corpus = Path(results_dir), Path(corpus)
    labels = corpus / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise DataError(f"no {labels}: --corpus must be a NAB checkout (git clone https://github.com/numenta/NAB)")
    all_windows = json.loads(labels.read_text())
    paths = find_results(results_dir, list(all_windows))
    if not paths:
        raise DataError(f"no results in {results_dir}: expected <category>/<detector>_<file>.csv as NAB writes")
    results, windows = {}, {}
    for name, path in paths.items():
        stamps, scores = read_results_csv(path)
        results[name] = scores
        windows[name] = window_rows(stamps, all_windows[name], name)
    profile_file = corpus / "config" / "profiles.json"
    profiles = load_profiles(profile_file if profile_file.is_file() else None)
    return score_corpus(results, windows, profiles), len(paths), len(all_windows)


def main(argv: Sequence[str] | None = None) -> int:
    """`brainlab nab-score results=<dir> [corpus=<NAB root>]`: the scoreboard of a detector's results."""
    try:
        args = key_values("nab-score", sys.argv[1:] if argv is None else argv,
                          {"results": None, "corpus": "../shared/data/nab"}, old_positional="results")
        results, scored, total = score_results_dir(Path(args["results"]), Path(args["corpus"]))
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(scoreboard(results, Path(args["results"]).name))
    if scored < total:
        print(f"SUBSET: {scored} of {total} corpus files scored; this is not the NAB score of the corpus")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
