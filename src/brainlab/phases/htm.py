"""Phase 3: HTM streaming anomaly detection on NAB, scored exactly as NAB scores.

fit = the streaming pass as NAB runs it: one fresh detector per file, rows in time order, online learning
(no gradients: manual optimisation, no optimizer). Files are streamed side by side (`data.lockstep`), each
with its own detector, as one batched HTM: a Lightning step is `data.rows_per_step` rows of every file.
Each finished file is written in NAB's results layout
(`<results_dir>/<detector>/<category>/<detector>_<file>.csv`, columns `timestamp,value,anomaly_score,raw_score,
label`), so NAB itself or `python -m brainlab.metrics.nab` can score it. test = scoring: files not streamed
during fit are streamed first; then the threshold is optimised per profile over the corpus and
`test/nab_standard`, `test/nab_reward_low_fp`, `test/nab_reward_low_fn` are logged and the scoreboard printed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainlab.metrics.nab import METRIC_NAMES, load_profiles, probation_length, score_corpus, scoreboard
from brainlab.phases.base import Phase

log = logging.getLogger(__name__)


class HTMPhase(Phase):
    """Streams NAB files through an HTM net (`model.net`), writes NAB results, scores them at test."""

    #: rows per second while streaming; at test each NAB profile's score and threshold (`nab_*`: other profiles)
    logged_metrics = ("train/rows_per_s", "test/rows_per_s", *(f"test/{name}{end}" for name in METRIC_NAMES.values()
                                                              for end in ("", "_threshold")), "test/nab_*")

    def __init__(
        self,
        net: nn.Module | dict[str, Any],
        results_dir: str,
        detector: str = "htm",
        probation_percent: float = 0.15,
        num_threads: int | None = 1,
        **base: Any,
    ) -> None:
        super().__init__(net=net, **base)
        self.automatic_optimization = False
        self.results_dir = Path(results_dir)
        self.detector = detector
        self.num_threads = num_threads  # Phase.limit_threads applies it while fitting/testing
        self.probation_percent = probation_percent
        self.raw: dict[str, list[np.ndarray]] = {}
        self.done: dict[str, dict[str, np.ndarray]] = {}
        self.rows_done = 0
        self.seconds = 0.0
        self.results: dict[str, Any] = {}

    def configure_optimizers(self) -> None:
        return None  # HTM learns online by its own (Hebbian) rules

    def reset_states(self) -> None:
        """HTM state is per stream: it is reset at the start of each file, not per batch."""

    # --- the streaming pass ----------------------------------------------------------------------
    def _consume(self, batch: dict[str, Any]) -> None:
        """One chunk of a lockstep group: rows `start..` of each of its files, run as one batch."""
        names = list(batch["files"])
        start = int(batch["start"])
        if all(n in self.done for n in names):
            return
        values = batch["value"].cpu().numpy()
        stamps = batch["timestamp"].cpu().numpy()
        length = batch["length"].cpu().numpy()
        if start == 0:
            self.net.reset(
                batch["input_min"].cpu().numpy(), batch["input_max"].cpu().numpy(), batch["first_value"].cpu().numpy()
            )
            for n in names:
                self.raw[n] = []
        elif any(
            n not in self.raw or sum(len(r) for r in self.raw[n]) != start for n in names if length[names.index(n)]
        ):
            raise RuntimeError(f"NAB streams {names[:3]} arrived out of order (chunk at row {start})")
        t0 = time.perf_counter()
        raw = self.net(values, stamps, learn=True, lengths=length)
        self.seconds += time.perf_counter() - t0
        self.rows_done += int(length.sum())
        for k, n in enumerate(names):
            if length[k]:
                self.raw[n].append(raw[k, : length[k]])
                if start + int(length[k]) == int(batch["n_rows"][k]):
                    self._finish(n)
        self.log(
            "train/rows_per_s" if self.training else "test/rows_per_s",
            self.rows_done / max(self.seconds, 1e-9),
            on_step=True,
            prog_bar=True,
            batch_size=1,
        )

    def _finish(self, name: str) -> None:
        raw = np.concatenate(self.raw.pop(name))
        stream = self._stream(name)
        probation = probation_length(len(raw), self.probation_percent)
        score = self.net.final_scores(raw, stream.values, probation)
        label = np.zeros(len(raw), dtype=np.int64)
        for left, right in stream.windows:
            label[left : right + 1] = 1
        self.done[name] = {"anomaly_score": score, "raw_score": raw}
        self._write(name, stream, score, raw, label)

    def _stream(self, name: str) -> Any:
        dm = self.trainer.datamodule
        return next(s for s in dm.streams if s.name == name)

    def _write(self, name: str, stream: Any, score: np.ndarray, raw: np.ndarray, label: np.ndarray) -> None:
        """NAB's results file for one data file (written to a temp name, then renamed)."""
        category, file = name.split("/", 1)
        path = self.results_dir / self.detector / category / f"{self.detector}_{file}"
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = np.char.replace(np.datetime_as_string(stream.timestamps, unit="s"), "T", " ")
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w") as fh:
            fh.write("timestamp,value,anomaly_score,raw_score,label\n")
            for row in zip(stamps, stream.values, score, raw, label, strict=True):
                fh.write(f"{row[0]},{float(row[1])!r},{row[2]:.9g},{row[3]:.6g},{row[4]}\n")
        os.replace(tmp, path)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with torch.no_grad():
            self._consume(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        with torch.no_grad():
            self._consume(batch)  # files the fit did not stream (e.g. train=false) are streamed here

    # --- scoring ---------------------------------------------------------------------------------
    def on_test_epoch_end(self) -> None:
        dm = self.trainer.datamodule
        streams = {s.name: s for s in dm.streams}
        missing = sorted(set(streams) - set(self.done))
        if missing:
            raise RuntimeError(f"NAB files not streamed: {missing[:3]}")
        profiles = load_profiles(dm.profiles_path)
        results = {n: self.done[n]["anomaly_score"] for n in streams}
        windows = {n: s.windows for n, s in streams.items()}
        self.results = score_corpus(results, windows, profiles, self.probation_percent)
        for profile, r in self.results.items():
            key = METRIC_NAMES.get(profile, f"nab_{profile}")
            self.log(f"test/{key}", r.score, batch_size=1)
            self.log(f"test/{key}_threshold", r.threshold, batch_size=1)
        board = scoreboard(self.results, self.detector)
        full = dm.is_full_dataset
        note = "" if full else f"\nSUBSET / FIXTURE: {len(streams)} files; not NAB's corpus score\n"
        rate = self.rows_done / max(self.seconds, 1e-9)
        text = f"# NAB scoreboard\n\n{board}{note}\nrows: {self.rows_done}, HTM rows/s: {rate:.1f}\n"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.results_dir / "scoreboard.md").write_text(text)
        (self.results_dir / "scores.json").write_text(
            json.dumps(
                {
                    p: {
                        "score": r.score,
                        "threshold": r.threshold,
                        "raw": r.raw,
                        "null": r.null,
                        "perfect": r.perfect,
                        "per_file": r.per_file,
                    }
                    for p, r in self.results.items()
                },
                indent=2,
            )
        )
        if self.trainer.is_global_zero:
            print(text)
