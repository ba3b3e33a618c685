"""The convolutional SNN: shapes, spiking layers from the backend factory, per-step convs, bad config."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.nets.conv_snn import ConvSNN, PerStep
from brainlab.snn.factory import is_spiking
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron


def test_shapes_and_spiking_layers_come_from_the_factory() -> None:
    calls = []

    def factory(**params):
        calls.append(params)
        return sinabs_neuron(**params)

    net = ConvSNN([2, 16, 16], num_classes=5, backend=factory, channels=[4, 8], hidden_dim=12, n_hidden=2,
                  neuron={"kind": "iaf", "spike_threshold": 0.5})
    out = net(torch.rand(3, 7, 2, 16, 16))
    assert out.shape == (3, 7, 5)
    assert calls == [{"kind": "iaf", "spike_threshold": 0.5}] * 4  # 2 conv blocks + 2 hidden layers
    assert sum(is_spiking(m) for m in net.modules()) == 4


def test_per_step_conv_equals_the_conv_applied_to_each_time_step() -> None:
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(2, 4, 2, 8, 8)
    expected = torch.stack([conv(x[:, t]) for t in range(4)], dim=1)
    torch.testing.assert_close(PerStep(conv)(x), expected)


def test_gradient_reaches_the_first_conv_and_states_reset() -> None:
    torch.manual_seed(0)
    net = ConvSNN([2, 8, 8], num_classes=3, backend=sinabs_neuron, channels=[4], hidden_dim=8,
                  neuron={"kind": "iaf", "spike_threshold": 0.1})
    x = torch.rand(2, 5, 2, 8, 8) * 3
    net(x).sum().backward()
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
    with torch.no_grad():
        a = net(x)
        for m in net.modules():
            if hasattr(m, "reset_states"):
                m.reset_states()
        b = net(x)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": [32, 32]}, "channels, height, width"),
        ({"input_shape": [2, 4, 4], "channels": [4, 4, 4]}, "too small"),
        ({"pool_kind": "median"}, "pool_kind"),
        ({"channels": []}, "at least one"),
        ({"backend": None}, "neuron factory"),
    ],
)
def test_bad_config_is_refused(kwargs: dict, match: str) -> None:
    args = {"input_shape": [2, 16, 16], "num_classes": 3, "backend": sinabs_neuron, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ConvSNN(**args)


def test_the_experiment_builds_the_conv_net(make_cfg) -> None:
    cfg = make_cfg("experiment=dvs_gesture_snn", tiny=False)
    net = instantiate(cfg.model.net, _convert_="all")
    assert isinstance(net, ConvSNN)
    assert net(torch.zeros(1, 2, 2, 128, 128)).shape == (1, 2, 11)
