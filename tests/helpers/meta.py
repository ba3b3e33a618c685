"""Tiny meta-learning pieces the MAML tests share: a Conv4, a generated episode batch, a train-then-test loop."""

from __future__ import annotations

import torch

from brainlab.data.omniglot import OmniglotDataModule
from brainlab.nets.conv4 import Conv4
from brainlab.phases.meta import MAML


def tiny_net(ways: int = 5, size: int = 14) -> Conv4:
    return Conv4(num_classes=ways, hidden_dim=8, image_size=size, blocks=2)



def episode_batch(tasks: int = 2, ways: int = 3, shots: int = 1, queries: int = 2, size: int = 14) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"support_x": torch.rand(tasks, ways * shots, 1, size, size, generator=g),
            "support_y": torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1),
            "query_x": torch.rand(tasks, ways * queries, 1, size, size, generator=g),
            "query_y": torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)}



def meta_train_then_test(model: MAML, dm: OmniglotDataModule, opt: torch.optim.Optimizer) -> tuple[float, float]:
    """One epoch of meta-training; mean held-out query accuracy with and without adaptation."""
    for batch in dm.train_dataloader():
        opt.zero_grad()
        model.step(batch, "train").backward()
        opt.step()
    test = list(dm.test_dataloader())
    adapted = torch.cat([model.query_accuracy(b) for b in test]).mean()
    unadapted = torch.cat([model.query_accuracy(b, steps=0) for b in test]).mean()
    return float(adapted), float(unadapted)

