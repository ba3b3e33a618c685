"""The neuron variety (`model.net.neuron.*`): ALIF, recurrent IAF/LIF/ALIF, learnable time constants and the
configured surrogate, on sinabs (the reference layers) and fused (spikes identical, gradients equal incl.
time constants and the recurrent weight); backends that cannot express a neuron refuse it by name."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.snn import exodus_backend, fused, sinabs_backend
from brainlab.snn.factory import spiking_layers

ALIF = dict(kind="alif", tau_mem=6.0, tau_adapt=15.0, adapt_scale=1.5)
SETTINGS = [
    ALIF,
    dict(ALIF, spike_fn="single", reset="zero", min_v_mem=-0.5),
    dict(ALIF, surrogate="gaussian", surrogate_args={"sigma": 0.3}),
    dict(ALIF, recurrent=True, surrogate="heaviside"),
    dict(kind="lif", tau_mem=6.0, recurrent=True),
    dict(kind="lif", tau_mem=6.0, recurrent=True, tau_syn=4.0, reset="zero", surrogate="periodic_exponential"),
    dict(kind="iaf", recurrent=True, spike_fn="single", min_v_mem=-1.0),
    dict(kind="iaf", recurrent=True, tau_syn=3.0, surrogate="multi_gaussian"),
]
FEATS = 6


def _ids(setting: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in setting.items() if k not in ("tau_mem", "tau_adapt", "adapt_scale"))


def _pair(setting: dict, train_tau: bool = True) -> tuple[nn.Module, nn.Module]:
    params = {"spike_threshold": 0.8, "train_tau": train_tau, **setting}
    if params.get("recurrent"):
        params["features"] = FEATS
    ref, ours = sinabs_backend.neuron(**params), fused.neuron(**params)
    if params.get("recurrent"):
        # strong enough that recurrent input changes the spikes; an IAF with multi-spikes has no leak and emits
        # v / threshold spikes, so weights x3 make its loop unstable: spikes grow ~1.5x a step to ~1e5, where the
        # recurrent current's summation order (sinabs: BLAS inside nn.Linear; fused: neuron order) decides a
        # spike (and gradients of ~1e3 differ by ~1e-3 relative). Bit-identical spikes hold for the same recurrent
        # current (checked: with sinabs summing in neuron order, v_mem is identical), so that layer gets x0.5.
        gain = 0.5 if params["kind"] == "iaf" and params.get("spike_fn", "multi") == "multi" else 3.0
        with torch.no_grad():
            ref.rec_connect.weight.mul_(gain)
        ours.rec_connect.load_state_dict(ref.rec_connect.state_dict())
    return ref, ours


def _input(setting: dict, batch: int = 4, steps: int = 30) -> torch.Tensor:
    scale = 1.5 if setting["kind"] == "iaf" else 6.0  # LIF/ALIF scale their input by 1 - alpha
    return torch.randn(batch, steps, FEATS) * scale + 0.3


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_spikes_identical_and_gradients_equal(setting: dict) -> None:
    torch.manual_seed(0)
    ref, ours = _pair(setting)
    x_ref = _input(setting).requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    assert torch.equal(out_ref, out_our), "forward spikes differ from sinabs"
    assert out_ref.sum() > 0 and (out_ref == 0).any(), "the input must make some but not all neurons spike"
    weight = torch.randn_like(out_ref)
    ((out_ref * weight).sum() + ref.v_mem.square().sum()).backward()
    ((out_our * weight).sum() + ours.v_mem.square().sum()).backward()
    torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    ours_params = dict(ours.named_parameters())
    checked = []
    for name, p_ref in ref.named_parameters():
        if p_ref.requires_grad:
            assert ours_params[name].grad is not None, name
            # sinabs leaves a grad of None where nothing depends on the parameter (ALIF with reset=zero: the
            # adaptive threshold only enters the surrogate, which sinabs does not differentiate)
            ref_grad = p_ref.grad if p_ref.grad is not None else torch.zeros_like(p_ref)
            torch.testing.assert_close(ours_params[name].grad, ref_grad, rtol=1e-3, atol=1e-4)
            checked.append(name)
    expected = {"tau_mem"} if setting["kind"] != "iaf" else set()
    expected |= {"tau_adapt"} if setting["kind"] == "alif" else set()
    expected |= {"tau_syn"} if "tau_syn" in setting else set()
    expected |= {"rec_connect.weight"} if setting.get("recurrent") else set()
    assert set(checked) == expected


def test_recurrent_weight_changes_the_spikes() -> None:
    """Not a no-op: the same layer with the recurrent weight zeroed spikes differently."""
    torch.manual_seed(1)
    _, ours = _pair(dict(kind="lif", tau_mem=6.0, recurrent=True))
    x = _input(dict(kind="lif"))
    with_rec = ours(x)
    ours.reset_states()
    with torch.no_grad():
        ours.rec_connect.weight.zero_()
    assert not torch.equal(ours(x), with_rec)


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[5]], ids=_ids)
def test_state_carries_over_resets_and_reinitialises_like_sinabs(setting: dict) -> None:
    torch.manual_seed(2)
    ref, ours = _pair(setting)
    first, second = _input(setting, 3, 12), _input(setting, 3, 9)
    assert torch.equal(ref(first), ours(first))
    assert torch.equal(ref(second), ours(second)), "the second call continues from the carried state"
    assert torch.equal(ref.v_mem, ours.v_mem)
    if setting["kind"] == "alif":
        assert torch.equal(ref.b, ours.b) and ours.b.abs().sum() > 0
        torch.testing.assert_close(ours.spike_threshold, ref.spike_threshold)
    ref.reset_states()
    ours.reset_states()
    assert not ours.v_mem.any()
    assert torch.equal(ref(second), ours(second)), "after reset_states a call starts from zero"
    other = _input(setting, 5, 9)  # a new batch size re-initialises ALIF / recurrent state (as sinabs)
    assert torch.equal(ref(other), ours(other))


@pytest.mark.parametrize("backend", ["sinabs", "fused"])
def test_time_constants_learnable_only_with_train_tau(backend: str) -> None:
    factory = sinabs_backend.neuron if backend == "sinabs" else fused.neuron
    fixed = factory(**ALIF)
    learnable = factory(**ALIF, train_tau=True)
    assert not any(p.requires_grad for p in fixed.parameters())
    names = {n for n, p in learnable.named_parameters() if p.requires_grad}
    assert names == {"tau_mem", "tau_adapt"}
    out = learnable(_input(ALIF))
    out.sum().backward()
    assert learnable.tau_mem.grad.abs() > 0 and learnable.tau_adapt.grad.abs() > 0


def test_surrogate_args_reach_the_gradient_on_both_backends() -> None:
    torch.manual_seed(3)
    grads = {}
    for width in (0.2, 1.0):
        setting = dict(kind="lif", tau_mem=6.0, surrogate_args={"grad_width": width})
        ref, ours = _pair(setting)
        x_ref, x_our = (_input(setting).requires_grad_() for _ in range(2))
        with torch.no_grad():
            x_our.copy_(x_ref)
        ref(x_ref).sum().backward()
        ours(x_our).sum().backward()
        torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
        grads[width] = x_our.grad
    assert not torch.allclose(grads[0.2], grads[1.0])
    with pytest.raises(ConfigError, match="surrogate_args .* do not fit surrogate=gaussian .*sigma"):
        fused.neuron(kind="iaf", surrogate="gaussian", surrogate_args={"grad_width": 0.3})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(kind="alif", tau_mem=5.0, tau_adapt=10.0),
         "model.net.neuron.kind=alif is not supported by backend=exodus; use backend=fused, backend=sinabs"),
        (dict(kind="lif", tau_mem=5.0, recurrent=True, features=4),
         "model.net.neuron.recurrent=true is not supported by backend=exodus; use backend=fused, backend=sinabs"),
        (dict(kind="iaf", reset="zero"),
         "model.net.neuron.reset=zero is not supported by backend=exodus; use backend=fused, backend=sinabs"),
    ],
)
def test_exodus_refuses_what_it_cannot_express_before_importing(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        exodus_backend.neuron(**params)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(kind="alif", tau_mem=5.0), "model.net.neuron.tau_adapt must be > 0 for kind=alif"),
        (dict(kind="lif", tau_mem=5.0, tau_adapt=3.0), "tau_adapt is only used by kind=alif"),
        (dict(kind="alif", tau_mem=5.0, tau_adapt=9.0, tau_syn=2.0), "tau_syn is not supported with kind=alif"),
        (dict(kind="lif", tau_mem=5.0, recurrent=True), "recurrent=true needs the layer width"),
        (dict(kind="iaf", min_v_mem=2.0), "min_v_mem=2.0 must be below spike_threshold=1.0"),
        (dict(kind="iaf", surrogate="sigmoid"), "model.net.neuron.surrogate='sigmoid' is not supported"),
    ],
)
@pytest.mark.parametrize("backend", ["sinabs", "fused"])
def test_bad_neuron_knobs_are_refused(backend: str, params: dict, message: str) -> None:
    factory = sinabs_backend.neuron if backend == "sinabs" else fused.neuron
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        factory(**params)


def test_recurrent_alif_net_from_config_equals_sinabs(make_cfg) -> None:
    """`model.net.neuron.kind=alif model.net.neuron.recurrent=true`: the net passes its width to the backend."""
    overrides = ("model.net.neuron.kind=alif", "+model.net.neuron.tau_mem=5.0", "+model.net.neuron.tau_adapt=20.0",
                 "+model.net.neuron.recurrent=true", "+model.net.neuron.train_tau=true",
                 "model.net.neuron.spike_threshold=0.3")
    nets = {b: instantiate(make_cfg(f"backend={b}", *overrides).model.net, _convert_="all")
            for b in ("sinabs", "fused")}
    nets["fused"].load_state_dict(nets["sinabs"].state_dict(), strict=False)
    layers = [m for _, m in spiking_layers(nets["fused"])]
    assert len(layers) == 2 and all(m.rec_connect.in_features == 16 for m in layers)
    x = (torch.rand(3, 20, 1, 16) < 0.5).float() * 3
    ref, ours = nets["sinabs"](x), nets["fused"](x)
    torch.testing.assert_close(ours, ref)
    ours.square().sum().backward()
    assert all(m.rec_connect.weight.grad.abs().sum() > 0 and m.tau_adapt.grad is not None for m in layers)


def test_conv_net_refuses_recurrent_neurons() -> None:
    """Only the feed-forward layers know their width; a conv net's spiking layers refuse recurrent=true."""
    from brainlab.nets.conv_snn import ConvSNN

    with pytest.raises(ConfigError, match="recurrent=true needs the layer width"):
        ConvSNN(input_shape=[2, 8, 8], num_classes=3, backend=fused.neuron, neuron={"recurrent": True})


def test_recurrent_alif_net_learns_a_timing_task() -> None:
    """A Linear -> recurrent ALIF -> Linear net fits two classes that differ only in when the input comes."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 24), fused.neuron(**ALIF, recurrent=True, features=24, train_tau=True,
                                                 spike_threshold=0.3), nn.Linear(24, 2))
    x = torch.zeros(16, 20, 4)
    labels = torch.arange(16) % 2
    x[labels == 0, :8] = 1.0  # early input
    x[labels == 1, 12:] = 1.0  # late input
    optim = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        net[1].reset_states()
        loss = nn.functional.cross_entropy(net(x)[:, 10:].sum(1), labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::8]


@pytest.mark.gpu
@pytest.mark.parametrize("setting", SETTINGS, ids=_ids)
def test_cuda_kernels_equal_sinabs_for_every_kind(setting: dict) -> None:
    """The Triton path of ALIF / recurrent layers: same spikes, same gradients as sinabs on the GPU."""
    torch.manual_seed(0)
    ref, ours = (m.cuda() for m in _pair(setting))
    x_ref = _input(setting).cuda().requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    if setting.get("recurrent"):  # cuBLAS sums the recurrent current in its own order: allow a rare flip
        assert (out_ref == out_our).float().mean() > 0.999
    else:
        assert torch.equal(out_ref, out_our)
    weight = torch.randn_like(out_ref)
    (out_ref * weight).sum().backward()
    (out_our * weight).sum().backward()
    if torch.equal(out_ref, out_our):
        torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
        ours_params = dict(ours.named_parameters())
        for name, p_ref in ref.named_parameters():
            if p_ref.grad is not None:
                torch.testing.assert_close(ours_params[name].grad, p_ref.grad, rtol=1e-3, atol=1e-4)
