"""backend=fused against the reference: spikes identical to sinabs, gradients equal to sinabs's surrogate
gradients, sinabs's state semantics, and a training run through brainlab.train.run."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from brainlab.snn import fused, sinabs_backend
from brainlab.snn.fused import MembraneFn, SynapseFn, kernel_config
from brainlab.snn.grads import same_at_every_step
from brainlab.snn.spec import NeuronSpec
from brainlab.train import run

SETTINGS = [
    dict(kind=kind, spike_fn=spike_fn, reset=reset, min_v_mem=min_v)
    for kind, spike_fn, reset, min_v in itertools.product(
        ("iaf", "lif"), ("multi", "single"), ("subtract", "zero"), (None, -0.5)
    )
] + [
    dict(kind="lif", tau_syn=4.0),
    dict(kind="iaf", tau_syn=3.0, spike_fn="single", reset="zero"),
    dict(kind="lif", surrogate="heaviside", spike_threshold=0.6),
    dict(kind="iaf", surrogate="gaussian", spike_threshold=1.3),
    dict(kind="lif", surrogate="periodic_exponential", min_v_mem=-1.0),
]


def _params(setting: dict) -> dict:
    params = {"spike_threshold": 0.8, "train_tau": True, **setting}
    if params["kind"] == "lif":
        params.setdefault("tau_mem", 6.0)
    return params


def _pair(setting: dict) -> tuple[nn.Module, nn.Module]:
    params = _params(setting)
    return sinabs_backend.neuron(**params), fused.neuron(**params)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_spikes_identical_and_gradients_equal(setting: dict) -> None:
    torch.manual_seed(0)
    ref, ours = _pair(setting)
    scale = 6.0 if setting["kind"] == "lif" else 1.5  # LIF scales its input by 1 - alpha
    x_ref = (torch.randn(5, 40, 4, 2) * scale + 0.3).requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    assert out_our.shape == x_ref.shape
    assert torch.equal(out_ref, out_our), "forward spikes differ from sinabs"
    assert out_ref.sum() > 0 and (out_ref == 0).any(), "the input must make some but not all neurons spike"
    if setting.get("spike_fn", "multi") == "multi":
        assert out_ref.max() >= 2, "MultiSpike should emit several spikes in one step somewhere"
    # the loss also reads the carried state, so its gradient path is checked too
    weight = torch.randn_like(out_ref)
    ((out_ref * weight).sum() + ref.v_mem.square().sum()).backward()
    ((out_our * weight).sum() + ours.v_mem.reshape(ref.v_mem.shape).square().sum()).backward()
    torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    for name in ("tau_mem", "tau_syn"):
        p_ref, p_our = getattr(ref, name, None), getattr(ours, name, None)
        if isinstance(p_our, nn.Parameter):
            assert p_our.grad is not None, f"{name} is learnable with train_tau=true"
            torch.testing.assert_close(p_our.grad, p_ref.grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[7], SETTINGS[8], SETTINGS[16], SETTINGS[18],
                                     dict(kind="lif", train_tau=False)],
                         ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_gradient_of_spikes_summed_over_time_read_without_a_copy_equals_sinabs(setting: dict) -> None:
    """A rate readout (`out.sum(time)`) hands the backward one gradient broadcast over time (stride 0): the CPU
    kernel reads it as it is; the gradients still equal sinabs's."""
    torch.manual_seed(0)
    ref, ours = _pair(setting)
    scale = 6.0 if setting["kind"] == "lif" else 1.5
    x_ref = (torch.randn(5, 40, 8) * scale + 0.3).requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    assert torch.equal(out_ref, out_our) and out_ref.sum() > 0
    strides: list[tuple[int, ...]] = []
    out_our.register_hook(lambda g: strides.append(g.stride()))
    readout = torch.randn(8)
    ((out_ref.sum(1) * readout).square().sum()).backward()
    ((out_our.sum(1) * readout).square().sum()).backward()
    assert strides[0][1] == 0 and same_at_every_step(torch.ones(5, 1, 8).expand(5, 40, 8))
    assert x_ref.grad.abs().sum() > 0
    torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[9], SETTINGS[16]])
def test_state_carries_over_and_resets_like_sinabs(setting: dict) -> None:
    torch.manual_seed(1)
    ref, ours = _pair(setting)
    first, second = torch.randn(2, 15, 6) * 2, torch.randn(2, 10, 6) * 2
    assert torch.equal(ref(first), ours(first))
    assert torch.equal(ref(second), ours(second)), "the second call continues from the carried state"
    assert torch.equal(ref.v_mem, ours.v_mem)
    ref.reset_states()
    ours.reset_states()
    assert not ours.v_mem.any()
    assert torch.equal(ref(second), ours(second)), "after reset_states a call starts from zero"
    fresh = fused.neuron(**_params(setting))
    ours.reset_states()
    assert torch.equal(ours(second), fresh(second))
    # a new feature shape re-initialises; a new batch size keeps the features (sinabs resamples rows)
    assert ours(torch.randn(2, 5, 3)).shape == (2, 5, 3)
    assert ours(torch.randn(4, 5, 3)).shape == (4, 5, 3) and ours.v_mem.shape == (4, 3)


@pytest.mark.parametrize("min_v", [None, -0.3])
def test_gradcheck_without_threshold(min_v: float | None) -> None:
    """Where no threshold is involved (no spikes, zero reset), the analytic gradients are exact."""
    torch.manual_seed(2)
    u = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(3, dtype=torch.float64, requires_grad=True)
    cfg = kernel_config(NeuronSpec(spike_threshold=1e6, reset="zero", min_v_mem=min_v))
    assert torch.autograd.gradcheck(lambda a, b, c: MembraneFn.apply(a, b, c, cfg)[1], (u, v0, alpha))
    assert torch.autograd.gradcheck(lambda a, b, c: SynapseFn.apply(a, b, c), (u, v0, alpha))


def test_bf16_autocast_keeps_fp32_state_and_sinabs_spikes() -> None:
    torch.manual_seed(3)
    linear = nn.Linear(8, 6)
    ref, ours = _pair(dict(kind="lif"))
    x = torch.randn(2, 20, 8) * 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        current = linear(x)
        out_ref, out_our = ref(current), ours(current)
    assert current.dtype == torch.bfloat16 and out_our.dtype == torch.bfloat16
    assert ours.v_mem.dtype == torch.float32
    assert torch.equal(out_our.float(), out_ref.float())
    out_our.float().sum().backward()
    assert linear.weight.grad is not None and torch.isfinite(linear.weight.grad).all()


def test_torch_compile_is_optional_and_gives_the_same_output() -> None:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(8, 16), fused.neuron(kind="lif", tau_mem=5.0, tau_syn=3.0), nn.Linear(16, 4))
    x = torch.rand(3, 10, 8) * 3
    eager = net(x)
    net[1].reset_states()
    compiled = torch.compile(net, backend="eager")(x)
    assert torch.equal(compiled, eager)
    compiled.sum().backward()
    assert net[0].weight.grad.abs().sum() > 0


ALIF_RECURRENT = ("model.net.neuron.kind=alif", "+model.net.neuron.tau_mem=5.0", "+model.net.neuron.tau_adapt=20.0",
                  "+model.net.neuron.recurrent=true", "+model.net.neuron.train_tau=true",
                  "model.net.neuron.spike_threshold=0.3")


@pytest.mark.parametrize(("precision", "neuron"), [("32-true", ALIF_RECURRENT), ("bf16-mixed", ())],
                         ids=["fp32-alif-recurrent", "bf16-iaf"])
def test_fused_trains_like_sinabs_in_the_default_run(tmp_path, precision: str, neuron: tuple[str, ...]) -> None:
    """`python train.py backend=fused` (TINY): the same training as backend=sinabs, step for step."""
    from helpers.config import TINY, compose_cfg

    extra = ["trainer.max_epochs=1", "model.scheduler.warmup_steps=2", "model.optimizer.lr=0.01",
             f"trainer.precision={precision}", *neuron]
    ours_cfg = compose_cfg(tmp_path / "fused", [*TINY, *extra, "backend=fused"])
    assert ours_cfg.model.net.backend._target_ == "brainlab.snn.fused.neuron"
    ours = run(ours_cfg)
    ref = run(compose_cfg(tmp_path / "sinabs", [*TINY, *extra, "backend=sinabs"]))
    assert ours["test/acc"] == ref["test/acc"]
    assert ours["test/loss"] == pytest.approx(ref["test/loss"], rel=1e-3)
    assert ours["test/rate/mean"] == pytest.approx(ref["test/rate/mean"], rel=1e-3)
    assert ours["test/rate/mean"] > 0


@pytest.mark.gpu
@pytest.mark.parametrize("setting", SETTINGS[::3] + SETTINGS[-5:], ids=lambda s: "-".join(map(str, s.values())))
def test_cuda_kernels_equal_sinabs(setting: dict) -> None:
    """The Triton path: same spikes and gradients as sinabs on the GPU."""
    torch.manual_seed(0)
    ref, ours = (m.cuda() for m in _pair(setting))
    scale = 6.0 if setting["kind"] == "lif" else 1.5
    x_ref = (torch.randn(5, 40, 8, device="cuda") * scale + 0.3).requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    assert torch.equal(out_ref, out_our)
    weight = torch.randn_like(out_ref)
    (out_ref * weight).sum().backward()
    (out_our * weight).sum().backward()
    torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)


def test_vectorised_exp_of_the_cpu_kernel_matches_numpy() -> None:
    """The CPU backward's own exp (vectorisable; SingleExponential surrogate) is as exact as float32 allows."""
    import numpy as np

    from brainlab.snn.fused.cpu import exp_neg

    y = np.concatenate([-np.abs(np.random.default_rng(0).standard_normal(20000)) * 20, [0.0, -1e-9, -87.0]])
    y = y.astype(np.float32)
    ref = np.exp(y.astype(np.float64))
    ours = exp_neg(y)
    normal = y >= -87.0
    assert (np.abs(ours - ref) / ref)[normal].max() < 2e-7
    assert np.all(np.abs(ours - ref)[~normal] < 2e-38), "below exp(-87) the value is clamped, never larger"
