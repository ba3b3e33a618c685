"""backend.synapse=event: the event-driven synapse (gather-sum forward, scatter weight gradient) against the dense
nn.Linear and against sinabs. Its sums run in input order, not BLAS's, so a spike may flip where a membrane lies
within rounding of the threshold: such mismatches are counted (and printed) and must stay below 0.1 % of spikes."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.metrics.neuromorphic import count_costs
from brainlab.nets.snn import FeedForwardSNN
from brainlab.snn import fused, sinabs_backend
from brainlab.snn.event_linear import AUTO_MAX_DENSITY, EventLinear, event_linear
from brainlab.snn.factory import reset_states
from brainlab.snn.plug import factory, linear_for

ALIF = dict(kind="alif", tau_mem=6.0, tau_adapt=15.0, adapt_scale=1.5)
SETTINGS = [
    dict(kind="iaf"),
    dict(kind="iaf", spike_fn="single", reset="zero", min_v_mem=-0.5),
    dict(kind="lif", tau_mem=6.0, tau_syn=4.0),
    ALIF,
    dict(kind="iaf", recurrent=True),
    dict(kind="lif", tau_mem=6.0, recurrent=True),
    dict(ALIF, recurrent=True),
]
MAX_MISMATCH = 1e-3  # of the reference's spikes


def _ids(setting: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in setting.items() if k not in ("tau_mem", "tau_adapt", "adapt_scale"))


def _spikes(batch: int = 8, steps: int = 60, width: int = 100, p: float = 0.2) -> torch.Tensor:
    return (torch.rand(batch, steps, width) < p).float() * 2.0  # the backends bench's input: counts of 2


def _nets(setting: dict, synapse: str = "event", seed: int = 0) -> tuple[FeedForwardSNN, FeedForwardSNN]:
    """The blog-style net (100-128-128-128-35) with sinabs neurons and with fused neurons + `synapse`."""
    neuron = {"spike_threshold": 1.0, **setting}
    gain = 4.0 if setting["kind"] != "iaf" else 1.0  # LIF/ALIF scale their input by 1 - alpha
    torch.manual_seed(seed)
    ref = FeedForwardSNN([100], 35, sinabs_backend.neuron, neuron=neuron)
    ours = FeedForwardSNN([100], 35, functools.partial(fused.neuron, synapse=synapse), neuron=neuron)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("weight") and "rec_connect" not in name:
                p.mul_(gain)
            if "rec_connect" in name:
                p.mul_(0.5)
        params = dict(ref.named_parameters())
        for name, p in ours.named_parameters():
            p.copy_(params[name])
    return ref, ours


def _layerwise(ref: FeedForwardSNN, ours: FeedForwardSNN, x: torch.Tensor) -> tuple[int, int]:
    """(mismatched spikes, reference spikes) over the spiking layers, each fed the reference's input."""
    mismatches = total = 0
    h = x.flatten(start_dim=2)
    mods_ref, mods_our = list(ref.layers), list(ours.layers)
    for i in range(0, len(mods_ref) - 1, 2):
        cur_ref, cur_our = mods_ref[i](h), mods_our[i](h)
        torch.testing.assert_close(cur_our, cur_ref, rtol=1e-5, atol=1e-5)  # only the summation order differs
        s_ref, s_our = mods_ref[i + 1](cur_ref), mods_our[i + 1](cur_our)
        mismatches += int((s_ref != s_our).sum())
        total += int(s_ref.sum())
        h = s_ref
    return mismatches, total


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_event_spikes_equal_sinabs_but_for_rounding(setting: dict) -> None:
    ref, ours = _nets(setting)
    assert isinstance(ours.layers[0], EventLinear) and isinstance(ours.layers[-1], EventLinear)
    torch.manual_seed(1)
    x = _spikes()
    with torch.no_grad():
        mismatches, total = _layerwise(ref, ours, x)
        reset_states(ref.modules())
        reset_states(ours.modules())
        out_ref, out_our = ref(x), ours(x)
    print(f"\n[event synapse {_ids(setting)}] {mismatches} mismatched of {total} sinabs spikes (layer by layer)")
    assert total > 1000, "the net must spike"
    assert mismatches <= MAX_MISMATCH * total
    if mismatches == 0:
        torch.testing.assert_close(out_our, out_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_event_gradients_equal_dense(setting: dict) -> None:
    _, dense = _nets(setting, synapse="dense")
    _, event = _nets(setting, synapse="event")
    assert type(dense.layers[0]) is nn.Linear
    torch.manual_seed(2)
    x = _spikes(batch=4, steps=40)
    target = torch.randn(4, 35)
    for net in (dense, event):
        net.zero_grad()
        reset_states(net.modules())
        (net(x).sum(1) - target).square().mean().backward()
    for (name, p_dense), (_, p_event) in zip(dense.named_parameters(), event.named_parameters(), strict=True):
        if not p_dense.requires_grad:
            continue
        assert p_event.grad is not None, name
        torch.testing.assert_close(p_event.grad, p_dense.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("width", [50, 64, 130])  # the active inputs are found per 64-wide block
def test_event_linear_matches_linear_with_input_gradient(width: int) -> None:
    torch.manual_seed(3)
    lin = nn.Linear(width, 20)
    ev = EventLinear(width, 20)
    ev.load_state_dict(lin.state_dict())
    x = ((torch.rand(3, 30, width) < 0.1).float() * torch.randint(1, 4, (3, 30, width))).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    g = torch.randn(3, 30, 20)
    lin(x).backward(g)
    ev(x2).backward(g)
    torch.testing.assert_close(x2.grad, x.grad)
    torch.testing.assert_close(ev.weight.grad, lin.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ev.bias.grad, lin.bias.grad, rtol=1e-5, atol=1e-5)
    nobias = EventLinear(width, 20, bias=False)
    with torch.no_grad():
        nobias.weight.copy_(lin.weight)
        torch.testing.assert_close(nobias(x), lin(x) - lin.bias, rtol=1e-5, atol=1e-5)


def test_gradient_broadcast_over_time_takes_the_summed_path() -> None:
    """A loss on the output summed over time: the input gradient comes back broadcast (stride 0, no full-size
    product), the weight and bias gradients equal nn.Linear's."""
    torch.manual_seed(5)
    lin, ev = nn.Linear(100, 20), EventLinear(100, 20)
    ev.load_state_dict(lin.state_dict())
    x = _spikes(batch=4, steps=30).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    strides: list[tuple[int, ...]] = []
    x2.register_hook(lambda g: strides.append(g.stride()))
    readout = torch.randn(4, 20)
    (lin(x).sum(1) * readout).sum().backward()
    (ev(x2).sum(1) * readout).sum().backward()
    assert strides == [(100, 0, 1)]
    torch.testing.assert_close(x2.grad, x.grad)
    torch.testing.assert_close(ev.weight.grad, lin.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ev.bias.grad, lin.bias.grad, rtol=1e-5, atol=1e-5)
    # a gradient that differs per step takes the scatter path, whose input gradient is a full-size product
    strides.clear()
    ev(x2).mul(torch.randn(4, 30, 20)).sum().backward()
    assert strides == [(3000, 100, 1)]


def test_auto_chooses_by_density_deterministically(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(4)
    sparse = (torch.rand(4, 20, 30) < AUTO_MAX_DENSITY / 2).float()
    dense = torch.randn(4, 20, 30)
    choices = []
    with caplog.at_level(logging.INFO, logger="brainlab.snn.event_linear"):
        for _ in range(2):
            layers = [EventLinear(30, 8, mode="auto") for _ in range(2)]
            layers[0](sparse)
            layers[0](dense)  # fixed after the first input
            layers[1](dense)
            choices.append([layer.chosen for layer in layers])
    assert choices == [["event", "dense"], ["event", "dense"]]
    assert sum("synapse=auto chose" in r.getMessage() for r in caplog.records) == 4  # once per layer


def test_synapse_is_the_fused_plug_config() -> None:
    default = factory("fused")
    assert default.keywords["synapse"] == "dense"
    assert linear_for(default)(3, 4).__class__ is nn.Linear, "the default keeps today's dense numbers"
    event = functools.partial(default.func, **{**default.keywords, "synapse": "auto"})
    layer = linear_for(event)(3, 4)
    assert isinstance(layer, EventLinear) and layer.mode == "auto"
    wrapped = functools.partial(default, synapse="event")  # the benches wrap the configured factory
    assert isinstance(linear_for(wrapped)(3, 4), EventLinear) and linear_for(wrapped)(3, 4).mode == "event"
    assert linear_for(functools.partial(event, synapse="dense"))(3, 4).__class__ is nn.Linear  # the outer one wins
    assert linear_for(sinabs_backend.neuron)(3, 4).__class__ is nn.Linear
    assert linear_for(lambda **kw: nn.Identity())(3, 4).__class__ is nn.Linear
    with pytest.raises(ConfigError, match="backend.synapse"):
        event_linear(3, 4, synapse="sparse")
    with pytest.raises(ConfigError, match="backend.synapse"):
        fused.neuron(synapse="sparse")


def test_backend_synapse_override_reaches_the_net() -> None:
    from hydra.utils import instantiate

    from brainlab.core.paths import compose_config

    cfg = compose_config("train", ["backend=fused", "backend.synapse=event"])
    net = instantiate(cfg.model.net)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert linears and all(isinstance(m, EventLinear) and m.mode == "event" for m in linears)


def test_metric_hooks_count_event_linear_as_linear() -> None:
    ref, ours = _nets(dict(kind="iaf"), synapse="dense")
    _, event = _nets(dict(kind="iaf"), synapse="event")
    x = _spikes(batch=2, steps=20)
    summaries = []
    for net in (ours, event):
        reset_states(net.modules())
        with torch.no_grad(), count_costs(net) as counts:
            net(x)
        summaries.append(counts.summary(0.9, 4.6))
    assert summaries[1]["synops"] == pytest.approx(summaries[0]["synops"], rel=1e-3)
    assert summaries[1]["macs"] == summaries[0]["macs"]
