"""Phase base: state resets before every batch, NaN loss stops with a message, warmup + cosine schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from brainlab.core.errors import TrainingError
from brainlab.phases.event_snn import EventSNN
from brainlab.phases.schedules import warmup_cosine
from brainlab.snn.sinabs_backend import neuron


def tiny_phase(net: nn.Module | None = None) -> EventSNN:
    net = net or nn.Sequential(nn.Linear(4, 8), neuron(kind="iaf"), nn.Linear(8, 3))
    return EventSNN(num_classes=3, net=net)


def test_states_are_reset_before_each_batch() -> None:
    phase = tiny_phase()
    x = torch.rand(2, 5, 4) * 3
    first = phase(x).detach().clone()
    second_without_reset = phase(x)
    assert not torch.equal(first, second_without_reset), "sinabs keeps membrane state across calls"
    phase.reset_states()
    torch.testing.assert_close(phase(x), first)
    phase.log = lambda *a, **k: None  # outside a Trainer
    loss_a = phase._run_step((x, torch.tensor([0, 1])), "val")
    loss_b = phase._run_step((torch.rand(3, 5, 4), torch.tensor([0, 1, 2])), "val")  # new batch size: no error
    loss_c = phase._run_step((x, torch.tensor([0, 1])), "val")
    assert torch.isfinite(loss_b)
    assert loss_a == loss_c


class NaNNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], x.shape[1], 3), float("nan"))


def test_nan_loss_stops_with_a_message() -> None:
    phase = tiny_phase(NaNNet())
    phase.log = lambda *a, **k: None
    with pytest.raises(TrainingError, match="train/loss became nan .*lower model.optimizer.lr"):
        phase._run_step((torch.rand(2, 5, 4), torch.tensor([0, 1])), "train")


def test_warmup_then_cosine_to_min_lr() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=100, warmup_steps=10, min_lr=0.01)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < 0.01
    assert max(lrs) == pytest.approx(1.0, rel=1e-6) and lrs.index(max(lrs)) == 10
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01, abs=1e-6)
