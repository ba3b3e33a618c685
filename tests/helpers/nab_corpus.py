"""Write a small corpus in NAB's own layout (`data/`, `labels/`, `config/profiles.json`) for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brainlab.core.nab_windows import PROFILES


def write_corpus(
    root: Path | str,
    streams: dict[str, tuple[np.ndarray, np.ndarray]],
    windows: dict[str, list[tuple[int, int]]] | None = None,
    labels: dict[str, list[int]] | None = None,
    profiles: bool = True,
) -> Path:
    """Write a corpus in NAB's layout (`data/`, `labels/`, `config/profiles.json`): `streams[name] =
    (timestamps datetime64, values)`, windows / point labels as row indices."""
    root = Path(root)
    win_json, lab_json = {}, {}
    for name, (stamps, values) in streams.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = np.char.replace(np.datetime_as_string(np.asarray(stamps, dtype="datetime64[s]"), unit="s"), "T", " ")
        with path.open("w") as fh:
            fh.write("timestamp,value\n")
            fh.writelines(f"{t},{float(v)!r}\n" for t, v in zip(text, values, strict=True))
        if windows is not None and name in windows:
            win_json[name] = [[f"{text[a]}.000000", f"{text[b]}.000000"] for a, b in windows[name]]
        if labels is not None and name in labels:
            lab_json[name] = [str(text[i]) for i in labels[name]]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(win_json, indent=2))
    if labels is not None:
        (root / "labels" / "combined_labels.json").write_text(json.dumps(lab_json, indent=2))
    if profiles:
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "profiles.json").write_text(
            json.dumps({k: {"CostMatrix": v} for k, v in PROFILES.items()}, indent=2)
        )
    return root
