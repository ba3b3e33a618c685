"""Checks of every sample a reader reads, and `data.on_bad_sample=error|skip`.

A bad sample (a file that does not decode, events outside the sensor, non-finite times, a label outside
`num_classes`) is one `BadSample` line naming the file, the sample index, what is wrong and the fix. Samples are
checked twice: cheaply at setup for every sample (file sizes, headers, labels: `CheckedEvents.quick_problem`), and
fully (decode and check the events) whenever a sample is read, so where a cache builds (`caching.pack`) every
sample is checked once. With `skip` a bad sample is dropped from the index at setup or at cache build, never in the
middle of an epoch (DDP ranks keep equal batch counts and the same seed gives the same numbers); the datamodule
counts them (`bad_samples`, per split) and the run record keeps the counts. With `cache=none` a sample that passes
the setup checks but fails to decode stops the run when it is read, naming it (use a cache to have it skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from brainlab.core.checks import check_choice
from brainlab.core.errors import DataError

ON_BAD_SAMPLE = ("error", "skip")
FIX = "re-download it or set data.on_bad_sample=skip"


def bad_sample_policy(value: str) -> str:
    """`data.on_bad_sample`, checked."""
    return check_choice("data.on_bad_sample", value, ON_BAD_SAMPLE)


class BadSample(DataError):
    """One sample failed its check: the line names the file, the sample index, what is wrong and the fix."""

    def __init__(self, message: str, file: str = "", index: int = -1, reason: str = "") -> None:
        super().__init__(message)
        self.file, self.index, self.reason = file, index, reason

    @classmethod
    def of(cls, dataset: str, file: str, index: int, reason: str, fix: str = FIX) -> BadSample:
        return cls(f"{dataset}: {file} (sample {index}): {reason}: {fix}", file, index, reason)

    def __reduce__(self) -> tuple[Any, ...]:  # keeps its fields across worker processes
        return (type(self), (str(self), self.file, self.index, self.reason))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def event_problem(events: Any, sensor: Sequence[int]) -> str | None:
    """What is wrong with a structured event array from a sensor `(W, H, P)` (None: nothing)."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not names or "t" not in names or "x" not in names:
        return f"the events are not a structured array with x and t fields (got {type(events).__name__})"
    if len(events) == 0:
        return "it holds no events"
    limits = {"x": sensor[0], "y": sensor[1] if len(sensor) > 1 else None,
              "p": sensor[2] if len(sensor) > 2 and sensor[2] > 1 else None}
    for field, size in limits.items():
        if size is None or field not in names:
            continue
        values = events[field]
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            return f"{field} has non-finite values (NaN/inf)"
        low, high = values.min(), values.max()
        if low < 0 or high >= size:
            return f"{field} spans {low}..{high}, outside the sensor's 0..{int(size) - 1}"
    t = events["t"]
    if t.dtype.kind == "f" and not np.all(np.isfinite(t)):
        return "t has non-finite values (NaN/inf)"
    if t.min() < 0:
        return f"t has negative values (min {t.min()})"
    return None


def label_problem(target: Any, num_classes: int) -> str | None:
    try:
        label = float(np.asarray(target).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return f"label {target!r} is not a number"
    if not np.isfinite(label) or label != int(label) or not 0 <= label < num_classes:
        shown = int(label) if np.isfinite(label) and label == int(label) else label
        return f"label {shown} is outside 0..{num_classes - 1} (data.num_classes={num_classes})"
    return None


class CheckedEvents(Dataset):
    """A reader (built without a transform) whose every sample is decoded, checked, then transformed.

    The reader names its samples (`sample_file(i)`), may list its labels cheaply (`labels()`) and check a sample
    without decoding it (`quick_problem(i)`). Other attributes are the reader's (`speaker`, `data`, ...).
    """

    def __init__(self, reader: Any, transform: Callable | None, sensor: Sequence[int], num_classes: int,
                 dataset_name: str) -> None:
        self.reader, self.transform = reader, transform
        self.sensor = tuple(int(d) for d in sensor)
        self.num_classes, self.dataset_name = int(num_classes), dataset_name

    def __getattr__(self, name: str) -> Any:
        if name == "reader":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.reader, name)

    def __len__(self) -> int:
        return len(self.reader)

    #: the fix the line of a bad sample ends with
    fix = FIX

    def bad(self, index: int, reason: str) -> BadSample:
        return BadSample.of(self.dataset_name, self.reader.sample_file(index), index, reason, self.fix)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        try:
            events, target = self.reader[index]
        except BadSample:
            raise
        except (OSError, ValueError, IndexError, KeyError, TypeError, EOFError, RuntimeError) as exc:
            raise self.bad(index, f"cannot be read ({first_line(exc)})") from None
        reason = label_problem(target, self.num_classes) or event_problem(events, self.sensor)
        if reason:
            raise self.bad(index, reason)
        return (self.transform(events) if self.transform is not None else events), target

    def scan(self) -> dict[int, str]:
        """The cheap check of every sample (no decoding): index -> what is wrong."""
        found: dict[int, str] = {}
        labels = self.reader.labels()
        for index in range(len(self)):
            reason = label_problem(labels[index], self.num_classes) or self.reader.quick_problem(index)
            if reason:
                found[index] = reason
        return found


def without(dataset: Dataset, bad: set[int]) -> Dataset:
    """`dataset` (a `CheckedEvents` or a `Subset` of one) without the reader indices `bad`."""
    if not bad:
        return dataset
    if isinstance(dataset, Subset):
        return Subset(dataset.dataset, [i for i in dataset.indices if i not in bad])
    return Subset(dataset, [i for i in range(len(dataset)) if i not in bad])  # type: ignore[arg-type]


class BadItem:
    """What `guarded` serves for a bad sample (so that a cache build in worker processes can count it)."""

    def __init__(self, error: BadSample) -> None:
        self.error = error


class Guarded(Dataset):
    """Serves `BadItem` instead of raising for a bad sample: used only where a cache builds."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except BadSample as exc:
            return BadItem(exc)
