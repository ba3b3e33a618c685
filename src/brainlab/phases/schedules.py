"""Learning-rate schedules built from torch's own schedulers."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 2000, min_lr: float = 3e-5
) -> LRScheduler:
    """Linear warmup from ~0 to the optimizer's lr, then cosine decay to `min_lr` (the guide's schedule).

    Warmup is capped at a tenth of the run, so short runs still spend most steps at full lr.
    """
    total_steps = max(1, int(total_steps))
    warmup_steps = max(1, min(int(warmup_steps), total_steps // 10 or 1))
    warmup = LinearLR(optimizer, start_factor=1e-3, end_factor=1.0, total_iters=warmup_steps)
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=min_lr)
    return SequentialLR(optimizer, schedulers=[warmup, decay], milestones=[warmup_steps])
