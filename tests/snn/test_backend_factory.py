"""The backend plug: `backend=<name>` swaps the spiking layers of the same net; bad knobs are refused."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from brainlab.core.errors import ConfigError, find_brainlab_error
from brainlab.snn.factory import spiking_layers

BACKENDS = ("sinabs", "fused", "fastsnn")


def _net(make_cfg, backend: str, *overrides: str) -> nn.Module:
    cfg = make_cfg(f"backend={backend}", *overrides)
    return instantiate(cfg.model.net, _convert_="all")


def _refusal(make_cfg, backend: str, *overrides: str) -> str:
    """The one-line ConfigError that building the net raises (hydra wraps it)."""
    with pytest.raises(Exception) as info:
        _net(make_cfg, backend, *overrides)
    error = find_brainlab_error(info.value)
    assert isinstance(error, ConfigError), info.value
    return str(error)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_builds_the_same_net(make_cfg, backend: str) -> None:
    net = _net(make_cfg, backend)
    layers = spiking_layers(net)
    assert len(layers) == 2, "model.net.n_hidden spiking layers, found through the registry"
    x = (torch.rand(3, 20, 1, 16) < 0.3).float()
    out = net(x)
    assert out.shape == (3, 20, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    for _, layer in layers:
        layer.reset_states()


def test_fused_net_equals_sinabs_net_with_the_same_weights(make_cfg) -> None:
    overrides = ("model.net.neuron.kind=lif", "+model.net.neuron.tau_mem=5.0", "model.net.neuron.spike_threshold=0.5")
    ref, ours = _net(make_cfg, "sinabs", *overrides), _net(make_cfg, "fused", *overrides)
    linears = [(a, b) for a, b in zip(ref.modules(), ours.modules(), strict=True) if isinstance(a, nn.Linear)]
    for a, b in linears:
        b.load_state_dict(a.state_dict())
    x = (torch.rand(4, 20, 1, 16) < 0.4).float() * 3
    assert torch.equal(ref(x), ours(x))
    hidden = [m for _, m in spiking_layers(ours)]
    assert hidden[0].v_mem.abs().sum() > 0


@pytest.mark.parametrize("backend", ("sinabs", "fused", "exodus"))
def test_unknown_neuron_key_is_refused(make_cfg, backend: str) -> None:
    message = _refusal(make_cfg, backend, "+model.net.neuron.tau_m=3")
    assert f"unknown keys ['tau_m'] for backend={backend}" in message


def test_bad_values_name_the_key(make_cfg) -> None:
    assert "model.net.neuron.reset='hard' is not supported" in _refusal(
        make_cfg, "fused", "+model.net.neuron.reset=hard"
    )
    assert "model.net.neuron.tau_mem must be > 0 for kind=lif" in _refusal(
        make_cfg, "fused", "model.net.neuron.kind=lif"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where sinabs-exodus is absent")
def test_exodus_without_the_package_says_how_to_install(make_cfg) -> None:
    pytest.importorskip("sinabs")
    try:
        import sinabs.exodus  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("sinabs-exodus is installed here")
    message = _refusal(make_cfg, "exodus")
    assert message.startswith("backend=exodus needs the sinabs-exodus package")
    assert "No module named 'sinabs.exodus'" in message, "the real import error is shown"
    assert "pip install sinabs-exodus" in message and "\n" not in message
