"""Spike-element-wise ResNet (SEW-ResNet, Fang et al., NeurIPS 2021) on the backend factory.

A block's spikes `A` join its input spikes `S` by a connect function `g(A, S)`: `add` (A + S, the paper's
best on ImageNet), `and` (A * S) or `iand` ((1 - A) * S). Downsampling shortcuts are conv1x1-BN-spiking.
Sizes come from config: `layers` blocks per stage, `channels` per stage, `block` basic|bottleneck, `stem`
imagenet (7x7 stride 2 + max-pool, for 224 px) or small (3x3 stride 1, for CIFAR-sized images).
SEW-ResNet-18 = layers [2, 2, 2, 2], channels [64, 128, 256, 512], basic blocks, imagenet stem.

Input `(batch, C, H, W)` images in [0, 1], encoded over `time_steps` (`encoding` direct|rate); output
`(batch, time, num_classes)`: the readout at every step (phases average it over time). Stateless layers run
on all steps at once as `(batch * time, ...)`; with direct coding the stem conv runs once and is repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from brainlab.core.checks import check_choice, positive_int
from brainlab.core.errors import ConfigError
from brainlab.nets.conv_snn import PerStep
from brainlab.nets.encoding import ImageSNN

CONNECT: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": lambda a, s: a + s,
    "and": lambda a, s: a * s,
    "iand": lambda a, s: (1.0 - a) * s,
}
STEMS = ("imagenet", "small")


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout))


class SEWBlock(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 x4) SEW block on `(batch, time, C, H, W)` spikes."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool, spiking: Callable[[], nn.Module],
                 connect: str) -> None:
        super().__init__()
        cout = width * 4 if bottleneck else width
        if bottleneck:
            convs = [conv_bn(cin, width, 1), conv_bn(width, width, 3, stride), conv_bn(width, cout, 1)]
        else:
            convs = [conv_bn(cin, width, 3, stride), conv_bn(width, cout, 3)]
        self.body = nn.Sequential(*[m for c in convs for m in (PerStep(c), spiking())])
        self.shortcut = (nn.Sequential(PerStep(conv_bn(cin, cout, 1, stride)), spiking())
                         if stride != 1 or cin != cout else nn.Identity())
        self.connect = CONNECT[connect]
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.connect(self.body(x), self.shortcut(x))


class SEWResNet(ImageSNN):
    """`(batch, C, H, W)` -> `(batch, time, num_classes)`; spiking layers from `backend(**neuron)`."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        backend: Any,
        layers: Sequence[int] = (2, 2, 2, 2),
        channels: Sequence[int] = (64, 128, 256, 512),
        block: str = "basic",
        stem: str = "imagenet",
        stem_channels: int | None = None,
        connect: str = "add",
        **image: Any,
    ) -> None:
        """`image`: the input encoding and neuron knobs every image net takes (`ImageSNN`)."""
        super().__init__("SEWResNet", input_shape, num_classes, backend, **image)
        check_choice("model.net.block", block, ("basic", "bottleneck"))
        check_choice("model.net.stem", stem, STEMS)
        check_choice("model.net.connect", connect, CONNECT)
        if not layers or len(layers) != len(channels):
            raise ConfigError(f"model.net.layers {list(layers)} and model.net.channels {list(channels)} need one "
                              "entry per stage each")
        c_in, spiking = self.input_shape[0], self.spiking
        c = positive_int("model.net.stem_channels", stem_channels or int(channels[0]))
        if stem == "imagenet":
            self.stem_conv = conv_bn(c_in, c, 7, 2)
            self.stem_rest = nn.Sequential(spiking(), PerStep(nn.MaxPool2d(3, 2, 1)))
        else:
            self.stem_conv = conv_bn(c_in, c, 3, 1)
            self.stem_rest = nn.Sequential(spiking())
        blocks: list[nn.Module] = []
        for stage, (n_blocks, w) in enumerate(zip(layers, channels, strict=True)):
            positive_int("model.net.layers[]", int(n_blocks))
            positive_int("model.net.channels[]", int(w))
            for i in range(int(n_blocks)):
                stride = 2 if stage > 0 and i == 0 else 1
                blk = SEWBlock(c, int(w), stride, block == "bottleneck", spiking, connect)
                blocks.append(blk)
                c = blk.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.readout = nn.Linear(c, num_classes)
        self.features = c

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        x = self.encoder.through(images, self.stem_conv)  # direct coding: the stem runs once
        x = self.blocks(self.stem_rest(x))
        return self.readout(x.mean(dim=(-2, -1)))  # global average pool per step -> (batch, time, classes)
