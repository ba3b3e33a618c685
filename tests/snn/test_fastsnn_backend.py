"""backend=fastsnn against a plain step-by-step reference of its own equations (it is not sinabs's neuron)."""

from __future__ import annotations

import math

import pytest
import torch

from brainlab.core.errors import ConfigError
from brainlab.nets.readout_snn import LeakyReadout
from brainlab.snn import fastsnn, filters
from brainlab.snn.fastsnn import FastSigmoidStep
from brainlab.train import run


def reference(current: torch.Tensor, beta: float, thr: float, scale: float) -> torch.Tensor:
    """One step at a time: leaky integration without reset, spike at the first crossing only."""
    batch, steps, feats = current.shape
    v = torch.zeros(batch, feats, dtype=current.dtype)
    count = torch.zeros(batch, feats, dtype=current.dtype)
    out = []
    for t in range(steps):
        v = beta * v + current[:, t]
        z = FastSigmoidStep.apply(v - thr, scale)
        out.append(z * (count == 0).to(z.dtype))
        count = count + z.detach()
    return torch.stack(out, dim=1)


@pytest.mark.parametrize(("kind", "tau"), [("lif", 10.0), ("lif", 3.0), ("iaf", 10.0)])
def test_matches_step_by_step_reference(kind: str, tau: float) -> None:
    torch.manual_seed(0)
    layer = fastsnn.neuron(kind=kind, tau_mem=tau, spike_threshold=1.0, surrogate_scale=5.0)
    beta = 1.0 if kind == "iaf" else math.exp(-1.0 / tau)
    x = (torch.randn(4, 30, 7, dtype=torch.float64) * 0.6 + 0.1).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = layer(x), reference(x_ref, beta, 1.0, 5.0)
    assert torch.equal(out, out_ref)
    assert out.sum(dim=1).max() == 1, "at most one spike per neuron"
    assert 0 < out.sum() < out[:, 0].numel(), "some neurons spike, some stay silent"
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    (out_ref * weight).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
    assert x.grad.abs().sum() > 0


def test_gradcheck_of_the_causal_filter() -> None:
    """The threshold-free part (the membrane filter) has exact gradients."""
    current = torch.randn(2, 8, 3, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, v: filters.causal_filter(c, 0.8, v), (current, v0))


def test_state_carries_over_between_calls_and_resets() -> None:
    torch.manual_seed(1)
    layer = fastsnn.neuron(kind="lif", tau_mem=8.0)
    x = torch.randn(3, 40, 5) * 0.5 + 0.15
    whole = layer(x)
    layer.reset_states()
    chunks = torch.cat([layer(x[:, :17]), layer(x[:, 17:])], dim=1)
    assert torch.equal(chunks, whole), "a sequence split in two calls spikes like one call"
    assert whole.sum() > 0
    layer.reset_states()
    assert not layer.spiked.any() and not layer.v_mem.any()
    assert torch.equal(layer(x), whole)


def test_fewer_spikes_than_multi_spike_neuron_and_bf16() -> None:
    torch.manual_seed(2)
    linear = torch.nn.Linear(6, 5)
    layer = fastsnn.neuron(kind="lif", tau_mem=10.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(linear(torch.randn(2, 25, 6) * 4))
    assert out.dtype == torch.bfloat16 and layer.v_mem.dtype == torch.float32
    assert out.float().sum(dim=1).max() <= 1


def test_refuses_knobs_of_other_neurons() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['reset'\] for backend=fastsnn"):
        fastsnn.neuron(kind="lif", reset="zero")
    with pytest.raises(ConfigError, match="model.net.neuron.tau_mem must be > 0"):
        fastsnn.neuron(kind="lif", tau_mem=0)


def test_fastsnn_backend_runs_the_default_run(make_cfg) -> None:
    """`python train.py backend=fastsnn` (TINY) trains; learning is checked on fixtures by the experiment test."""
    cfg = make_cfg("backend=fastsnn")
    assert cfg.model.net.backend._target_ == "brainlab.snn.fastsnn.neuron"
    metrics = run(cfg)
    assert 0 < metrics["test/rate/mean"] <= 1.0 / 20, "at most one spike per neuron over the 20 bins"
    assert 0.0 <= metrics["test/acc"] <= 1.0 and math.isfinite(metrics["test/loss"])


def test_shd_fastsnn_experiment_end_to_end_on_fixtures(tmp_path) -> None:
    """experiment=shd_fastsnn through brainlab.train.run on a generated SHD-format fixture (coarse bins)."""
    import json

    from helpers.config import compose_cfg
    from helpers.events import make_shd

    root = make_shd(tmp_path / "shd", train=16, events=600)
    cfg = compose_cfg(tmp_path / "run", [
        "experiment=shd_fastsnn", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.val_fraction=0.2", "data.transform.transforms.1.time_window=100000", "data.n_time_bins=10",
        "model.net.neuron.dt=20.0", "model.net.hidden_dim=32", "model.optimizer.lr=1e-2", "trainer.max_epochs=4",
        "callbacks.progress_bar=null", "trainer.enable_model_summary=false", f"paths.data_dir={tmp_path}",
    ])
    assert cfg.model.net.backend._target_ == "brainlab.snn.fastsnn.neuron"
    metrics = run(cfg)
    assert metrics["test/acc"] > 0.5, f"chance is 0.25, got {metrics['test/acc']}"
    rows = {r["id"]: r for r in json.loads((tmp_path / "run" / "targets.json").read_text())}
    assert rows["shd"]["status"] == "not measured", "fixture numbers are never reported as SHD's"


def test_cpu_kernels_equal_the_torch_path() -> None:
    """The numba CPU kernels and the torch ops of the CUDA path give the same crossings and gradients."""
    torch.manual_seed(3)
    v = torch.randn(5, 40, 9) * 0.3 + 0.2
    spiked = torch.rand(5, 9) < 0.2
    spikes, first = fastsnn.first_crossing(v, 1.0, spiked)
    spikes_t, first_t = fastsnn.first_crossing_torch(v, 1.0, spiked)
    assert torch.equal(spikes, spikes_t) and torch.equal(first, first_t)
    assert (first >= 0).any() and (first < 0).any()
    grad = torch.randn_like(v)
    last = torch.randint(-1, 40, (5, 9))
    torch.testing.assert_close(fastsnn.surrogate_grad(v, grad, last, 1.0, 10.0),
                               fastsnn.surrogate_grad_torch(v, grad, last, 1.0, 10.0))


def test_leaky_readout_matches_step_by_step_and_carries_state() -> None:
    readout = LeakyReadout(tau=20.0, dt=2.0)
    x = torch.randn(3, 12, 4, dtype=torch.float64)
    beta, v, ref = math.exp(-2.0 / 20.0), torch.zeros(3, 4, dtype=torch.float64), []
    for t in range(12):
        v = beta * v + x[:, t]
        ref.append(v)
    torch.testing.assert_close(readout(x), torch.stack(ref, dim=1))
    readout.reset_states()
    torch.testing.assert_close(torch.cat([readout(x[:, :5]), readout(x[:, 5:])], dim=1), torch.stack(ref, dim=1))
    with pytest.raises(ConfigError, match="readout_tau"):
        LeakyReadout(tau=0.0)


@pytest.mark.parametrize("steps", [150, 200])
def test_blocked_filter_matches_reference_for_long_sequences(steps: int) -> None:
    """T > 2 x BLOCK takes the blocked O(T L) filter: spikes and gradients still equal the step-by-step ones."""
    assert steps > 2 * filters.BLOCK
    torch.manual_seed(4)
    layer = fastsnn.neuron(kind="lif", tau_mem=20.0, spike_threshold=1.0, surrogate_scale=5.0)
    x = (torch.randn(2, steps, 6, dtype=torch.float64) * 0.2).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = layer(x), reference(x_ref, math.exp(-1.0 / 20.0), 1.0, 5.0)
    assert torch.equal(out, out_ref) and 0 < out.sum() < 12, "some neurons spike, some stay silent"
    assert (out.nonzero()[:, 1] >= 2 * filters.BLOCK).any(), "spikes in a later block (carry between blocks)"
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    (out_ref * weight).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
    v0 = torch.randn(2, 6, dtype=torch.float64)
    torch.testing.assert_close(filters.causal_filter(x.detach(), 0.9, v0),
                               filters.causal_filter(x.detach(), 0.9, v0, block=10**6))
