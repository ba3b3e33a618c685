"""backend=exodus: its own Python side on CPU (the knob mapping onto the layers' arguments, refusals, the missing
package's message, the NIR mapping) against a stand-in for `sinabs.exodus.layers`; the real layers against sinabs
on a GPU only (`gpu`, skipped elsewhere: sinabs-exodus is a CUDA extension, pinned to 2.0.0 in the exodus extra)."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
import sinabs.activation as sa
import sinabs.layers as sl
import torch

from brainlab.core.errors import ConfigError
from brainlab.snn import exodus_backend, sinabs_backend
from brainlab.snn.factory import is_spiking
from brainlab.snn.plug import backend_of

HAS_EXODUS = importlib.util.find_spec("sinabs.exodus") is not None


class StandInLayers:
    """Stands in for `sinabs.exodus.layers` where sinabs-exodus cannot be installed: as in sinabs-exodus 2.0.0 its
    LIF subclasses sinabs's LIF with the same arguments plus `decay_early`, and its IAF is that LIF with an infinite
    tau_mem whose `tau_mem` then reads None. Records the arguments the factory passes. Only the factory's mapping
    and the NIR path are tested against it, never exodus's CUDA kernels."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        calls = self.calls

        class LIF(sl.LIF):
            def __init__(self, decay_early: bool = True, record: bool = True, **kwargs: Any) -> None:
                if record:
                    calls.append(("LIF", {**kwargs, "decay_early": decay_early}))
                super().__init__(**kwargs)
                self.decay_early = decay_early

        class IAF(LIF):
            def __init__(self, decay_early: bool = True, **kwargs: Any) -> None:
                calls.append(("IAF", {**kwargs, "decay_early": decay_early}))
                super().__init__(tau_mem=np.inf, norm_input=False, decay_early=decay_early, record=False, **kwargs)
                self.tau_mem = None

            @property
            def alpha_mem_calculated(self) -> torch.Tensor:
                return torch.tensor(1.0)

        self.LIF, self.IAF = LIF, IAF


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandInLayers:
    layers = StandInLayers()
    monkeypatch.setattr(exodus_backend, "load_layers", lambda: layers)
    return layers


MAPPED = [
    dict(kind="iaf"),
    dict(kind="iaf", spike_fn="single", min_v_mem=-0.5, surrogate="gaussian", surrogate_args={"sigma": 0.3}),
    dict(kind="iaf", tau_syn=3.0, train_tau=True),
    dict(kind="lif", tau_mem=8.0, train_tau=True, surrogate="heaviside"),
    dict(kind="lif", tau_mem=8.0, tau_syn=4.0, spike_threshold=0.6, surrogate="periodic_exponential"),
]


@pytest.mark.parametrize("setting", MAPPED, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_knobs_map_onto_the_exodus_layer_arguments(stand_in: StandInLayers, setting: dict) -> None:
    layer = exodus_backend.neuron(**setting)
    (cls, kwargs), = stand_in.calls
    assert cls == setting["kind"].upper()
    assert kwargs["spike_threshold"] == setting.get("spike_threshold", 1.0)
    assert kwargs["spike_fn"] is (sa.SingleSpike if setting.get("spike_fn") == "single" else sa.MultiSpike)
    assert isinstance(kwargs["reset_fn"], sa.MembraneSubtract)
    surrogate = sinabs_backend.SURROGATES[setting.get("surrogate", "single_exponential")]
    assert type(kwargs["surrogate_grad_fn"]) is surrogate
    for key, value in setting.get("surrogate_args", {}).items():
        assert getattr(kwargs["surrogate_grad_fn"], key) == value
    assert kwargs["min_v_mem"] == setting.get("min_v_mem")
    if "tau_syn" in setting:  # exodus's decay_early=True is sinabs's synapse
        assert (kwargs["tau_syn"], kwargs["decay_early"]) == (setting["tau_syn"], True)
    else:
        assert "tau_syn" not in kwargs
    if setting["kind"] == "lif":
        assert (kwargs["tau_mem"], kwargs["norm_input"]) == (setting["tau_mem"], True)
    else:
        assert "tau_mem" not in kwargs
    taus = {name: p for name, p in layer.layer.named_parameters() if name.startswith("tau")}
    expected = {name for name, used in (("tau_mem", setting["kind"] == "lif"), ("tau_syn", "tau_syn" in setting))
                if used}
    assert set(taus) == expected
    assert all(p.requires_grad == setting.get("train_tau", False) for p in taus.values())
    assert isinstance(layer, exodus_backend.ExodusNeuron) and is_spiking(layer)
    assert backend_of(layer) is exodus_backend.BACKEND


def test_cpu_tensors_are_refused_in_one_line(stand_in: StandInLayers) -> None:
    layer = exodus_backend.neuron(kind="lif", tau_mem=5.0)
    with pytest.raises(ConfigError, match=r"^backend=exodus runs on CUDA tensors only: use trainer=gpu, or "
                                          r"backend=fused on CPU$"):
        layer(torch.zeros(2, 3, 4))
    layer.reset_states()  # delegated to the held layer


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(kind="alif", tau_mem=5.0, tau_adapt=10.0), "kind=alif is not supported by backend=exodus"),
        (dict(kind="lif", tau_mem=5.0, recurrent=True, features=4), "recurrent=true is not supported by backend=exo"),
        (dict(kind="iaf", reset="zero"), "reset=zero is not supported by backend=exodus"),
    ],
)
def test_what_exodus_cannot_express_is_refused_before_any_import(monkeypatch: pytest.MonkeyPatch, params: dict,
                                                                 message: str) -> None:
    def no_import() -> None:
        raise AssertionError("sinabs-exodus was imported for a refused setting")

    monkeypatch.setattr(exodus_backend, "load_layers", no_import)
    with pytest.raises(ConfigError, match=message):
        exodus_backend.neuron(**params)


@pytest.mark.skipif(HAS_EXODUS, reason="sinabs-exodus is installed here")
def test_missing_package_says_how_to_install_with_the_real_import_error() -> None:
    with pytest.raises(ConfigError) as err:
        exodus_backend.neuron(kind="iaf")
    message = str(err.value)
    assert message.startswith("backend=exodus needs the sinabs-exodus package, which failed to import "
                              "(ModuleNotFoundError: No module named 'sinabs.exodus')")
    assert "pip install sinabs-exodus" in message and "backend=fused" in message and "\n" not in message
    assert exodus_backend.BACKEND.unavailable() == message
    assert not exodus_backend.BACKEND.runs_on("cpu") and exodus_backend.BACKEND.runs_on("cuda:0")


def test_an_exodus_without_synaptic_current_is_refused_with_the_upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    class Old:
        @staticmethod
        def IAF(**kwargs: Any) -> None:  # noqa: N802 - the module attribute's name
            raise TypeError("__init__() got an unexpected keyword argument 'tau_syn'")

    monkeypatch.setattr(exodus_backend, "load_layers", lambda: Old)
    with pytest.raises(ConfigError, match=r"tau_syn needs sinabs-exodus >= 1.1 .*pip install -U sinabs-exodus"):
        exodus_backend.neuron(kind="iaf", tau_syn=3.0)


def test_nir_mapping_of_a_trained_lif_is_a_plain_sinabs_lif(stand_in: StandInLayers) -> None:
    layer = exodus_backend.neuron(kind="lif", tau_mem=8.0, tau_syn=4.0, spike_threshold=0.6, min_v_mem=-1.0,
                                  train_tau=True)
    with torch.no_grad():
        layer.layer.tau_mem.fill_(11.0)  # as trained
    plain = exodus_backend.to_sinabs(layer)
    assert type(plain) is sl.LIF
    assert float(plain.tau_mem) == pytest.approx(11.0) and float(plain.tau_syn) == pytest.approx(4.0)
    assert float(plain.spike_threshold) == pytest.approx(0.6) and float(plain.min_v_mem) == -1.0
    assert plain.norm_input and plain.spike_fn is sa.MultiSpike
    with pytest.raises(ConfigError, match="no NIR equivalent"):
        exodus_backend.to_sinabs(exodus_backend.ExodusNeuron(torch.nn.ReLU()))


def test_nir_mapping_of_an_iaf_is_a_plain_sinabs_iaf(stand_in: StandInLayers) -> None:
    layer = exodus_backend.neuron(kind="iaf", spike_threshold=0.7)
    plain = exodus_backend.to_sinabs(layer)
    assert type(plain) is sl.IAF and float(plain.spike_threshold) == pytest.approx(0.7)

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
