"""The NAB DataModule on corpora generated in NAB's own layout (and on the real one when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.nab_corpus import write_corpus

from brainlab.core.errors import ConfigError, DataError
from brainlab.data.nab import NABDataModule

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nab"


def stamps(n: int, start: str = "2015-03-01T00:00:00") -> np.ndarray:
    return np.datetime64(start) + np.arange(n) * np.timedelta64(300, "s")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    streams = {
        "realA/one.csv": (stamps(250), np.arange(250.0)),
        "realA/two.csv": (stamps(120), np.sin(np.arange(120.0))),
        "artB/three.csv": (stamps(1000), np.ones(1000)),
    }
    return write_corpus(
        tmp_path / "nab",
        streams,
        windows={"realA/one.csv": [(100, 120)], "realA/two.csv": []},
        labels={"realA/one.csv": [110], "artB/three.csv": [400, 800]},
    )


def test_streams_are_served_in_time_order_side_by_side(corpus: Path) -> None:
    dm = NABDataModule(str(corpus), rows_per_step=100)
    dm.setup("fit")
    assert [s.name for s in dm.streams] == ["artB/three.csv", "realA/one.csv", "realA/two.csv"]
    batches = list(dm.train_dataloader())
    # all files in lockstep, longest first: 10 chunks of the longest file's 1000 rows
    assert len(batches) == 10 and all(
        b["files"] == ["artB/three.csv", "realA/one.csv", "realA/two.csv"] for b in batches
    )
    assert [b["start"] for b in batches] == list(range(0, 1000, 100))
    assert [b["length"].tolist() for b in batches[:4]] == [[100, 100, 100], [100, 100, 20], [100, 50, 0], [100, 0, 0]]
    one = torch.cat([b["value"][1, : b["length"][1]] for b in batches])
    assert torch.equal(one, torch.arange(250.0, dtype=torch.float64))
    ts = torch.cat([b["timestamp"][1, : b["length"][1]] for b in batches])
    assert bool((ts.diff() == 300).all()) and int(ts[0]) == int(np.datetime64("2015-03-01T00:00:00", "s").astype(int))
    first = batches[0]
    assert (
        first["input_min"][1] == 0.0 and first["input_max"][1] == 249.0 and first["n_rows"].tolist() == [1000, 250, 120]
    )
    assert first["first_value"].tolist() == [1.0, 0.0, 0.0]
    assert not dm.is_full_dataset


def test_lockstep_one_serves_one_file_at_a_time(corpus: Path) -> None:
    dm = NABDataModule(str(corpus), rows_per_step=100, lockstep=1)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert [(b["files"], b["start"]) for b in batches][9:12] == [
        (["artB/three.csv"], 900),
        (["realA/one.csv"], 0),
        (["realA/one.csv"], 100),
    ]
    assert sum(int(b["length"].sum()) for b in batches) == 1370 and len(batches) == 10 + 3 + 2
    with pytest.raises(ConfigError, match="lockstep"):
        NABDataModule(str(corpus), lockstep=-1)


def test_windows_from_file_and_built_from_point_labels(corpus: Path) -> None:
    dm = NABDataModule(str(corpus))
    dm.setup()
    by_name = {s.name: s for s in dm.streams}
    assert by_name["realA/one.csv"].windows == [(100, 120)]  # combined_windows.json wins, used as is
    assert by_name["realA/two.csv"].windows == []
    # only point labels: NAB's windows, width int(0.1 * 1000 / 2) = 50 centred on each label
    assert by_name["artB/three.csv"].windows == [(375, 425), (775, 825)]


def test_subset_by_name_and_pattern(corpus: Path) -> None:
    dm = NABDataModule(str(corpus), files=["realA/*"])
    dm.setup()
    assert [s.name for s in dm.streams] == ["realA/one.csv", "realA/two.csv"]
    with pytest.raises(ConfigError, match="nosuch"):
        NABDataModule(str(corpus), files=["nosuch/*"]).setup()
    with pytest.raises(ConfigError, match="rows_per_step"):
        NABDataModule(str(corpus), rows_per_step=0)


def test_missing_or_corrupt_corpus_is_one_clear_error(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(DataError, match="git clone https://github.com/numenta/NAB"):
        NABDataModule(str(tmp_path / "absent")).setup()
    (corpus / "data" / "realA" / "two.csv").write_text("time,val\n1,2\n")
    with pytest.raises(DataError, match="two.csv is not a NAB data file"):
        NABDataModule(str(corpus)).setup()
    (corpus / "data" / "realA" / "two.csv").unlink()
    with pytest.raises(DataError, match="two.csv is missing"):
        NABDataModule(str(corpus)).setup()


@pytest.mark.skipif(not REAL.is_dir(), reason="real NAB corpus not present at ../shared/data/nab")
def test_real_corpus_is_the_full_dataset() -> None:
    dm = NABDataModule(str(REAL))
    dm.setup()
    assert len(dm.streams) == 58 and dm.is_full_dataset
    assert sum(len(s.windows) for s in dm.streams) == 116
    sub = NABDataModule(str(REAL), files=["realKnownCause/nyc_taxi.csv"])
    sub.setup()
    assert len(sub.streams[0]) == 10320 and not sub.is_full_dataset
