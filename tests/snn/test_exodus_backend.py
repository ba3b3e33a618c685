"""backend=exodus (the real sinabs-exodus CUDA layers) against sinabs: GPU only, skipped elsewhere."""

from __future__ import annotations

import pytest
import torch

from brainlab.core.errors import ConfigError
from brainlab.snn import exodus_backend, sinabs_backend

SETTINGS = [
    dict(kind="iaf"),
    dict(kind="iaf", spike_fn="single"),
    dict(kind="iaf", min_v_mem=-0.5, surrogate="gaussian"),
    dict(kind="lif", tau_mem=8.0, train_tau=True),
    dict(kind="lif", tau_mem=8.0, spike_fn="single", min_v_mem=-1.0, surrogate="heaviside"),
]
#: exodus's synapse decays early (`alpha * x + alpha * i`), sinabs's as `alpha * (i + x)`: equal up to rounding
SYN_SETTINGS = [dict(kind="lif", tau_mem=8.0, tau_syn=4.0), dict(kind="iaf", tau_syn=3.0)]


def _exodus_or_skip() -> None:
    try:
        exodus_backend.load_layers()
    except ConfigError as err:
        pytest.skip(str(err))


def test_alif_is_refused_before_any_import() -> None:
    with pytest.raises(ConfigError, match="kind=alif is not supported by backend=exodus; use backend=fused, "
                                          "backend=sinabs"):
        exodus_backend.neuron(kind="alif", tau_mem=5.0, tau_adapt=10.0)


@pytest.mark.gpu
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_exodus_equals_sinabs_on_cuda(setting: dict) -> None:
    _exodus_or_skip()
    torch.manual_seed(0)
    params = {"spike_threshold": 0.8, **setting}
    ref = sinabs_backend.neuron(**params).cuda()
    ours = exodus_backend.neuron(**params).cuda()
    scale = 6.0 if setting["kind"] == "lif" else 1.5
    x_ref = (torch.randn(4, 50, 16, device="cuda") * scale).requires_grad_()
    x_our = x_ref.detach().clone().requires_grad_()
    out_ref, out_our = ref(x_ref), ours(x_our)
    assert torch.equal(out_ref, out_our)
    weight = torch.randn_like(out_ref)
    (out_ref * weight).sum().backward()
    (out_our * weight).sum().backward()
    torch.testing.assert_close(x_our.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    if setting.get("train_tau"):
        torch.testing.assert_close(ours.layer.tau_mem.grad, ref.tau_mem.grad, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("setting", SYN_SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_exodus_synapse_matches_sinabs_up_to_rounding(setting: dict) -> None:
    _exodus_or_skip()
    torch.manual_seed(0)
    ref = sinabs_backend.neuron(spike_threshold=0.8, **setting).cuda()
    ours = exodus_backend.neuron(spike_threshold=0.8, **setting).cuda()
    x = torch.randn(4, 50, 16, device="cuda") * 3
    out_ref, out_our = ref(x), ours(x)
    assert out_ref.sum() > 0
    assert (out_ref == out_our).float().mean() > 0.999


@pytest.mark.gpu
def test_exodus_refuses_cpu_tensors() -> None:
    _exodus_or_skip()
    with pytest.raises(ConfigError, match="backend=exodus runs on CUDA tensors only"):
        exodus_backend.neuron(kind="iaf")(torch.zeros(1, 3, 2))


@pytest.mark.gpu
def test_gpu_speed_grid_includes_exodus(tmp_path) -> None:
    _exodus_or_skip()
    from brainlab.bench import backends

    record = backends.main(["device=cuda", "steps=[16]", "sizes=[32]", "batch=8", "repeats=1", "blog=false",
                            f"out={tmp_path}"])
    assert {"exodus", "fused", "sinabs"} <= {r["backend"] for r in record["rows"]}


def _ssc_exodus_cfg(tmp_path, *overrides: str):
    from helpers.config import compose_cfg
    from helpers.events import make_ssc

    root = make_ssc(tmp_path / "ssc", train=16, events=600)
    return compose_cfg(tmp_path / "run", [
        "experiment=ssc_exodus", f"data.root={root}", "data.num_classes=4", "data.batch_size=8",
        "data.transform.transforms.2.time_window=100000", "data.n_time_bins=10", "model.net.hidden_dim=16",
        "model.optimizer.lr=1e-2", "trainer.max_epochs=4", "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false", f"paths.data_dir={tmp_path}", *overrides,
    ])


def test_ssc_exodus_experiment_runs_with_fused_on_cpu(tmp_path) -> None:
    """experiment=ssc_exodus end to end on an SSC-format fixture; on CPU it runs with backend=fused, and
    as composed (backend=exodus) it stops with the install message where sinabs-exodus is missing."""
    from brainlab.core.errors import find_brainlab_error
    from brainlab.train import run

    cfg = _ssc_exodus_cfg(tmp_path)
    assert cfg.model.net.backend._target_ == "brainlab.snn.exodus_backend.neuron"
    if not torch.cuda.is_available():
        with pytest.raises(Exception) as info:
            run(cfg)
        assert "sinabs-exodus" in str(find_brainlab_error(info.value))
    metrics = run(_ssc_exodus_cfg(tmp_path, "backend=fused", "trainer=cpu"))
    assert metrics["test/acc"] > 0.6, f"chance is 0.25, got {metrics['test/acc']}"


@pytest.mark.gpu
def test_ssc_exodus_experiment_on_gpu(tmp_path) -> None:
    _exodus_or_skip()
    from brainlab.train import run

    metrics = run(_ssc_exodus_cfg(tmp_path, "trainer=gpu", "cache=gpu"))
    assert metrics["test/acc"] > 0.6
