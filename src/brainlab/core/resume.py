"""What the resume-state callback reads of a datamodule: where a resumed run's training loader starts.

Lives in core so that callbacks name the interface without importing `brainlab.data` (whose `DataModule` base
implements it).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ResumableData(Protocol):
    """A datamodule whose next training loader can start mid-epoch (after the batches a run already did)."""

    def resume_training_at(self, epoch: int, batches: int) -> None: ...
