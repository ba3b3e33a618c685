"""What phases, callbacks and entry points read of a datamodule: the declared interface, one place.

Every brainlab DataModule derives from `brainlab.data.base.DataModule`, which provides `DataModuleInfo` with
documented defaults; the narrower protocols name what one phase or callback reads of the datamodules it works
with (bAbI for the reasoning phase, MOSEI for the workspace phase, NAB for HTM, Minari for the rollouts). Readers
use these attributes directly, never `getattr` with a default of their own. This module lives in core so that
phases and callbacks can name the interface without importing `brainlab.data`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DataModuleInfo(Protocol):
    """Every brainlab datamodule (defaults from `brainlab.data.base.DataModule`).

    - `dataset_name`: names the dataset in messages and cache keys.
    - `is_full_dataset`: True only when the files are the complete published dataset, so test metrics are the
      dataset's own (the target table says `not measured` otherwise). Default False: fixtures, subsets and
      partial copies never pass for the dataset.
    - `batch_size`: samples per batch (None when the dataset yields whole batches, as NAB's streams do).
    """

    dataset_name: str

    @property
    def is_full_dataset(self) -> bool: ...

    @property
    def batch_size(self) -> int | None: ...


@runtime_checkable
class QuestionData(DataModuleInfo, Protocol):
    """What the reasoning phase reads of a bAbI-style datamodule (after `setup`)."""

    task_ids: list[int]
    variant: str
    words: Any  # a Vocabulary: `.tokens`
    answers: Any

    @property
    def variant_dir(self) -> Path: ...

    def use_vocabulary(self, vocab: Sequence[str], answers: Sequence[str]) -> None: ...


@runtime_checkable
class ModalityData(DataModuleInfo, Protocol):
    """What the workspace phase reads of a MOSEI-style datamodule."""

    cleaned: Mapping[str, int]  # non-finite feature values set to 0, per modality

    @property
    def input_dims(self) -> dict[str, int]: ...


@runtime_checkable
class EnvironmentData(DataModuleInfo, Protocol):
    """What the rollout callback and the active-inference phase read of an offline-RL datamodule."""

    dataset_id: str
    action_spec: Any  # `.from_unit(action)`, `.dim`, `.discrete`

    @property
    def requirements(self) -> list[str]: ...

    def make_env(self) -> Any: ...

    def flatten_observation(self, obs: Any) -> Any: ...

    def normalized_score(self, returns: Any) -> Any: ...


def full_dataset(datamodule: object) -> bool:
    """Whether test metrics on `datamodule` are the dataset's own: its declared `is_full_dataset`. No datamodule
    (loaders passed directly) or one that does not declare the interface counts as not the full dataset."""
    return isinstance(datamodule, DataModuleInfo) and bool(datamodule.is_full_dataset)


@runtime_checkable
class CountsBadSamples(Protocol):
    """A datamodule that checks its samples (`data.on_bad_sample`): per split, the bad samples it dropped (after
    `setup`; NAB counts rows). The run record keeps them."""

    bad_samples: dict[str, int]


def bad_sample_counts(datamodule: object) -> dict[str, int] | None:
    """The datamodule's dropped bad samples per split (None when it does not count them)."""
    if not isinstance(datamodule, CountsBadSamples):
        return None
    return {str(k): int(v) for k, v in datamodule.bad_samples.items()}
