"""A backend is one module plus one yaml: a plug written only inside this test is found by the factory, the
support refusals, the NIR export and the speed bench, with no other file touched."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import nir
import pytest
from hydra.utils import instantiate
from torch import nn

from brainlab.core.errors import ConfigError
from brainlab.core.paths import compose_config, config_dir
from brainlab.snn import exodus_backend, plug
from brainlab.snn.spec import parse_neuron

PLUG = '''
"""`backend=tiny`: an IAF neuron in plain torch (a test plug)."""
import sinabs.layers as sl
import torch
from torch import nn

from brainlab.snn.plug import Backend, Support
from brainlab.snn.spec import parse_neuron

MAPPED = []


class TinyNeuron(nn.Module):
    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold
        self.v = None

    def reset_states(self):
        self.v = None

    def forward(self, x):
        spikes = []
        v = torch.zeros_like(x[:, 0]) if self.v is None else self.v
        for t in range(x.shape[1]):
            v = v + x[:, t]
            s = (v >= self.threshold).to(x.dtype)
            v = v - s * self.threshold
            spikes.append(s)
        self.v = v.detach()
        return torch.stack(spikes, 1)


class TinyLinear(nn.Linear):
    """Its own synapse layer (e.g. event-driven later)."""


def to_sinabs(layer):
    MAPPED.append(layer)
    return sl.IAF(spike_threshold=torch.tensor(layer.threshold))


def neuron(kind="iaf", **params):
    spec = parse_neuron("tiny", {"kind": kind, **params})
    return TinyNeuron(float(spec.spike_threshold))


BACKEND = Backend("tiny", support=Support(kinds=("iaf", "alif"), recurrent=False), layers=(TinyNeuron,),
                  to_sinabs=to_sinabs, linear=TinyLinear)
'''


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of conf/ plus `backend/tiny.yaml`, and the module `tiny_plug` on sys.path."""
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "backend" / "tiny.yaml").write_text("_target_: tiny_plug.neuron\n_partial_: true\n")
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "tiny_plug.py").write_text(textwrap.dedent(PLUG))
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setenv("BRAINLAB_CONFIG_DIR", str(conf))
    yield conf
    plug._REGISTRY.pop("tiny", None)
    sys.modules.pop("tiny_plug", None)


def test_a_backend_defined_only_here_is_discovered_everywhere(tiny: Path, tmp_path: Path) -> None:
    found = plug.discover()
    assert set(found) == {"exodus", "fastsnn", "fused", "sinabs", "tiny"}
    mod = sys.modules["tiny_plug"]

    # the factory: the yaml's target, also through the composed train config
    layer = plug.factory("tiny")(kind="iaf", spike_threshold=0.7)
    assert isinstance(layer, mod.TinyNeuron)
    composed = instantiate(compose_config("train", ["backend=tiny", "paths.output_dir=."]).backend)
    assert isinstance(composed(kind="iaf"), mod.TinyNeuron)
    assert plug.backend_of(layer) is found["tiny"]
    assert isinstance(found["tiny"].linear(3, 4), mod.TinyLinear)

    # refusals name it where it supports the setting, and name the others where it does not
    with pytest.raises(ConfigError, match=r"kind=alif is not supported by backend=exodus; "
                                          r"use backend=fused, backend=sinabs, backend=tiny$"):
        exodus_backend.neuron(kind="alif", tau_mem=5.0, tau_adapt=10.0)
    with pytest.raises(ConfigError, match=r"kind=lif is not supported by backend=tiny; "
                                          r"use backend=exodus, backend=fused, backend=sinabs$"):
        parse_neuron("tiny", {"kind": "lif", "tau_mem": 5.0})
    with pytest.raises(ConfigError, match=r"recurrent=true is not supported by backend=tiny; "
                                          r"use backend=fused, backend=sinabs$"):
        plug.factory("tiny")(kind="iaf", recurrent=True, features=4)

    # the NIR export converts its layers with its mapping
    from brainlab.export import nir_graph

    graph = nir_graph(nn.Sequential(nn.Linear(3, 4), layer), features=3, steps=2)
    (node,) = [n for n in graph.nodes.values() if isinstance(n, nir.IF)]
    assert float(node.v_threshold[0]) == pytest.approx(0.7) and mod.MAPPED

    # the speed bench lists and times it
    from brainlab.bench import backends

    assert "tiny" in backends.known_backends()
    record = backends.main(["grid=false", "blog_model.widths=[4,6,2]", "blog_model.steps=3", "blog_model.batch=2",
                            "repeats=1", "device=cpu", "backends=[tiny]", f"out={tmp_path / 'bench'}"])
    assert {r["backend"] for r in record["rows"]} == {"floor", "sinabs", "tiny"}


def test_every_backend_declares_its_plug() -> None:
    found = plug.discover()
    assert set(found) >= {"exodus", "fastsnn", "fused", "sinabs"}
    for name, backend in found.items():
        assert backend.name == name and backend.layers and backend.to_sinabs is not None
        assert isinstance(backend.linear(2, 3), nn.Linear)
    assert found["fastsnn"].support is None, "fastsnn has its own knobs"


def test_an_unavailable_backend_gives_the_real_import_error() -> None:
    try:
        import sinabs.exodus.layers  # noqa: F401
    except Exception as err:  # noqa: BLE001
        why = plug.discover()["exodus"].unavailable()
        assert why is not None and type(err).__name__ in why and "pip install sinabs-exodus" in why
    else:
        assert plug.discover()["exodus"].unavailable() is None


def test_a_yaml_without_a_plug_module_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "backend").mkdir(parents=True)
    (conf / "backend" / "nest.yaml").write_text("_target_: no_such_plug_module.neuron\n_partial_: true\n")
    with pytest.raises(ConfigError, match="no_such_plug_module.neuron.*failed to import"):
        plug.discover(conf)
    (conf / "backend" / "nest.yaml").write_text("_target_: torch.nn.ReLU\n_partial_: true\n")
    with pytest.raises(ConfigError, match=r"defines no `BACKEND = Backend\(...\)`"):
        plug.discover(conf)
