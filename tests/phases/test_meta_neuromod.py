"""Neuromodulated MAML (a meta-learned gate per layer on the inner learning rate) and mini-ImageNet end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers.meta import episode_batch, meta_train_then_test, tiny_net
from helpers.miniimagenet import write_miniimagenet
from helpers.omniglot import write_omniglot
from torch.func import functional_call

from brainlab.core.errors import ConfigError
from brainlab.data.omniglot import OmniglotDataModule
from brainlab.phases.meta import MAML, layer_of
from brainlab.train import run

pytestmark = pytest.mark.usefixtures("one_thread")  # the fixture of tests/conftest.py


def reference_grads(net: torch.nn.Module, batch: dict, lrs: dict[str, torch.Tensor], steps: int,
                    first_order: bool) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Per-task inner loops with plain autograd and one learning-rate tensor per layer."""
    params = dict(net.named_parameters())
    losses = []
    for t in range(batch["support_x"].shape[0]):
        fast = dict(params)
        for _ in range(steps):
            inner = F.cross_entropy(functional_call(net, fast, (batch["support_x"][t],)), batch["support_y"][t])
            grads = torch.autograd.grad(inner, list(fast.values()), create_graph=not first_order)
            fast = {k: p - lrs[layer_of(k)] * g for (k, p), g in zip(fast.items(), grads, strict=True)}
        losses.append(F.cross_entropy(functional_call(net, fast, (batch["query_x"][t],)), batch["query_y"][t]))
    wrt = list(params.values()) + list(lrs.values())
    got = torch.autograd.grad(torch.stack(losses).mean(), wrt)
    return list(got[: len(params)]), dict(zip(lrs, got[len(params):], strict=True))


def test_gates_start_at_inner_lr_one_per_layer() -> None:
    model = MAML(net=tiny_net(3), ways=3, inner_lr=0.3, neuromodulation=True, gate_range=4.0)
    lrs = model.layer_lrs()
    assert list(lrs) == ["features.0.0", "features.0.1", "features.1.0", "features.1.1", "head"]
    assert all(float(lr.detach()) == pytest.approx(0.3) for lr in lrs.values())
    assert sorted(k for k in model.state_dict() if k.startswith("lr_gates.")) == sorted(
        f"lr_gates.{layer.replace('.', '-')}" for layer in lrs)
    assert not list(MAML(net=tiny_net(3), ways=3).lr_gates.parameters()), "plain MAML has no gates"
    with pytest.raises(ConfigError, match="model.gate_range"):
        MAML(net=tiny_net(3), neuromodulation=True, gate_range=1.0)


@pytest.mark.parametrize("first_order", [False, True])
def test_gates_get_the_reference_meta_gradient(first_order: bool) -> None:
    torch.manual_seed(0)
    model = MAML(net=tiny_net(3).double(), ways=3, inner_steps=2, inner_lr=0.3, first_order=first_order,
                 neuromodulation=True).double()
    with torch.no_grad():
        for gate in model.lr_gates.values():
            gate.uniform_(-1.0, 1.0)  # distinct rates per layer
    batch = {k: v.double() if v.is_floating_point() else v for k, v in episode_batch().items()}
    model.zero_grad()
    model.step(batch, "train").backward()
    lrs = {layer: lr.detach().requires_grad_() for layer, lr in model.layer_lrs().items()}
    want_params, want_lrs = reference_grads(model.net, batch, lrs, 2, first_order)
    for p, w in zip(model.net.parameters(), want_params, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-7, atol=1e-10)
    for layer, w in want_lrs.items():
        gate = model.lr_gates[layer.replace(".", "-")]
        assert float(gate.grad.abs()) > 0, f"gate of {layer} gets a meta-gradient"
        sig = torch.sigmoid(gate.detach())
        chain = w * model.inner_lr * model.gate_range * sig * (1 - sig)  # d lr / d gate
        torch.testing.assert_close(gate.grad, chain, rtol=1e-7, atol=1e-10)


def test_neuromodulated_maml_learns_its_inner_rates_and_beats_no_adaptation(tmp_path: Path) -> None:
    root = write_omniglot(tmp_path / "omniglot", background=20, evaluation=10, drawings=5)
    torch.manual_seed(0)
    dm = OmniglotDataModule(root=root, ways=5, shots=1, queries=3, image_size=14, train_episodes=120,
                            test_episodes=24, val_fraction=0.25, batch_size=4)
    dm.setup()
    # an inner rate too small for 3 steps: the gates must learn to open (up to gate_range x inner_lr)
    model = MAML(net=tiny_net(5), ways=5, inner_steps=3, inner_lr=0.05, first_order=True,
                 neuromodulation=True, gate_range=10.0)
    # the gates are 5 numbers: give them a faster outer rate for this short run
    opt = torch.optim.Adam([{"params": model.net.parameters()},
                            {"params": model.lr_gates.parameters(), "lr": 0.1}], lr=3e-3)
    adapted, unadapted = meta_train_then_test(model, dm, opt)
    lrs = {layer: float(lr.detach()) for layer, lr in model.layer_lrs().items()}
    assert sum(lrs.values()) / len(lrs) > 0.05 * 1.2, lrs
    assert len({round(v, 6) for v in lrs.values()}) == len(lrs), "each layer has its own rate"
    assert unadapted < 0.35, "without adaptation the shuffled labels are at chance (0.2)"
    assert adapted > unadapted + 0.25, (adapted, unadapted)


def test_miniimagenet_maml_runs_end_to_end_neuromodulated(tmp_path: Path, make_cfg) -> None:
    root = write_miniimagenet(tmp_path / "mini", classes={"train": 6, "val": 5, "test": 5}, images=4)
    cfg = make_cfg("experiment=miniimagenet_maml", f"data.root={root}", "data.image_size=16", "data.queries=2",
                   "data.train_episodes=4", "data.val_episodes=2", "data.test_episodes=4", "data.batch_size=2",
                   "model.net.hidden_dim=4", "model.net.blocks=2", "model.inner_steps=2", "model.inner_steps_eval=2",
                   "model.neuromodulation=true", "trainer.max_epochs=1", "callbacks.progress_bar=null",
                   "trainer.enable_model_summary=false", tiny=False)
    assert cfg.target == "miniimagenet_5w1s" and cfg.model.optimizer.lr == 1e-4
    assert cfg.model.net.in_channels == 3 and cfg.data.ways == 5 and cfg.data.shots == 1
    metrics = run(cfg)
    assert metrics["test/episodes"] == 4 and metrics["test/acc_ci95"] >= 0.0
    assert 0.0 <= metrics["test/acc"] <= 1.0 and 0.0 <= metrics["test/acc_unadapted"] <= 1.0
    gated = {k: v for k, v in metrics.items() if k.startswith("inner_lr/")}
    assert len(gated) == 5 and all(0.0 < v < 0.02 for v in gated.values()), gated  # 2 x (conv, norm) + head
    rows = {r["id"]: r for r in json.loads((Path(cfg.paths.output_dir) / "targets.json").read_text())}
    assert rows["miniimagenet_5w1s"]["status"] == "not measured"
