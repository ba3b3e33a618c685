"""MAML (torch.func) on generated Omniglot-layout characters: meta-gradients, adaptation, an end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers.meta import episode_batch, meta_train_then_test, tiny_net
from helpers.omniglot import write_omniglot

from brainlab.core.errors import ConfigError
from brainlab.data.omniglot import OmniglotDataModule
from brainlab.nets.conv4 import Conv4
from brainlab.phases.meta import MAML
from brainlab.train import run


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_omniglot(tmp_path_factory.mktemp("omniglot"), background=20, evaluation=10, drawings=5)








def meta_grads(model: MAML, batch: dict) -> list[torch.Tensor]:
    model.zero_grad()
    model.step(batch, "train").backward()
    return [p.grad.clone() for p in model.net.parameters()]


def reference_grads(net: Conv4, batch: dict, inner_lr: float, first_order: bool) -> list[torch.Tensor]:
    """One inner step per task with plain autograd (create_graph), the textbook MAML meta-gradient."""
    from torch.func import functional_call

    params = dict(net.named_parameters())
    losses = []
    for t in range(batch["support_x"].shape[0]):
        inner = F.cross_entropy(net(batch["support_x"][t]), batch["support_y"][t])
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=not first_order)
        adapted = {k: p - inner_lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
        logits = functional_call(net, adapted, (batch["query_x"][t],))
        losses.append(F.cross_entropy(logits, batch["query_y"][t]))
    return list(torch.autograd.grad(torch.stack(losses).mean(), list(params.values())))


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_equals_the_autograd_reference(first_order: bool) -> None:
    torch.manual_seed(0)
    model = MAML(net=tiny_net(3).double(), ways=3, inner_steps=1, inner_lr=0.3, first_order=first_order)
    batch = {k: v.double() if v.is_floating_point() else v for k, v in episode_batch().items()}
    got = meta_grads(model, batch)
    want = reference_grads(model.net, batch, 0.3, first_order)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-7, atol=1e-10)


def test_first_order_drops_second_order_terms() -> None:
    torch.manual_seed(0)
    net = tiny_net(3)
    batch = episode_batch()
    second = meta_grads(MAML(net=net, ways=3, inner_steps=2, inner_lr=0.3), batch)
    first = meta_grads(MAML(net=net, ways=3, inner_steps=2, inner_lr=0.3, first_order=True), batch)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(second, first, strict=True))


def test_bad_knobs_are_refused() -> None:
    with pytest.raises(ConfigError, match="model.inner_steps"):
        MAML(net=tiny_net(), inner_steps=-1)
    with pytest.raises(ConfigError, match="model.inner_lr"):
        MAML(net=tiny_net(), inner_lr=0.0)


def test_meta_training_then_adaptation_beats_no_adaptation_on_held_out_classes(root: Path, one_thread) -> None:
    torch.manual_seed(0)
    dm = OmniglotDataModule(root=root, ways=5, shots=1, queries=3, image_size=14, train_episodes=120,
                            test_episodes=24, val_fraction=0.25, batch_size=4)
    dm.setup()
    model = MAML(net=tiny_net(5), ways=5, inner_steps=3, inner_lr=0.4, first_order=True)
    adapted, unadapted = meta_train_then_test(model, dm, torch.optim.Adam(model.parameters(), lr=3e-3))
    assert unadapted < 0.35, "without adaptation the shuffled labels are at chance (0.2)"
    assert adapted > unadapted + 0.25, (adapted, unadapted)


def test_omniglot_maml_runs_end_to_end_and_says_not_measured(root: Path, make_cfg, one_thread) -> None:
    cfg = make_cfg("experiment=omniglot_maml", f"data.root={root}", "data.image_size=14", "data.queries=2",
                   "data.train_episodes=8", "data.val_episodes=4", "data.val_fraction=0.25", "data.test_episodes=6",
                   "data.batch_size=2",
                   "model.net.hidden_dim=8", "model.net.blocks=2", "model.inner_steps=2", "trainer.max_epochs=1",
                   "callbacks.progress_bar=null", "trainer.enable_model_summary=false", tiny=False)
    assert cfg.target == "omniglot_5w1s" and cfg.model.optimizer.lr == 1e-4
    metrics = run(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and 0.0 <= metrics["val/acc"] <= 1.0
    assert metrics["test/episodes"] == 6 and metrics["test/acc_ci95"] >= 0.0
    assert 0.0 <= metrics["test/acc_unadapted"] <= 1.0
    rows = {r["id"]: r for r in json.loads((Path(cfg.paths.output_dir) / "targets.json").read_text())}
    assert rows["omniglot_5w1s"]["status"] == "not measured"
    assert rows["omniglot_5w1s"]["achieved"] == pytest.approx(metrics["test/acc"])


def test_conv4_norm_is_batch_norm_over_the_batch_seen() -> None:
    from brainlab.nets.conv4 import BatchStatNorm2d

    x = torch.randn(6, 4, 5, 5)
    norm = BatchStatNorm2d(4)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    ref = torch.nn.BatchNorm2d(4, track_running_stats=False)
    ref.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x), ref(x), rtol=1e-4, atol=1e-5)
    assert Conv4(num_classes=5)(torch.zeros(3, 1, 28, 28)).shape == (3, 5)


def test_test_metrics_are_the_episode_mean_with_its_95_ci(root: Path, one_thread) -> None:
    import pytorch_lightning as pl

    torch.manual_seed(0)
    dm = OmniglotDataModule(root=root, ways=5, shots=1, queries=2, image_size=14, test_episodes=10,
                            val_fraction=0.25, batch_size=4)  # 10 episodes: batches of 4, 4 and 2
    model = MAML(net=tiny_net(5), ways=5, inner_steps=1, inner_lr=0.4)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    accs = torch.cat([model.query_accuracy(b) for b in dm.test_dataloader()])
    unadapted = torch.cat([model.query_accuracy(b, steps=0) for b in dm.test_dataloader()])
    assert metrics["test/episodes"] == 10 and float(accs.std()) > 0
    assert metrics["test/acc"] == pytest.approx(float(accs.mean()), abs=1e-6)
    assert metrics["test/acc_ci95"] == pytest.approx(1.96 * float(accs.std()) / 10 ** 0.5, abs=1e-6)
    assert metrics["test/acc_unadapted"] == pytest.approx(float(unadapted.mean()), abs=1e-6)


@pytest.mark.parametrize("experiment", ["omniglot_maml", "miniimagenet_maml"])
def test_experiments_test_on_at_least_600_episodes_by_default(experiment: str, make_cfg) -> None:
    cfg = make_cfg(f"experiment={experiment}", tiny=False)
    assert cfg.data.test_episodes >= 600 and cfg.data.ways == 5 and cfg.data.shots == 1
