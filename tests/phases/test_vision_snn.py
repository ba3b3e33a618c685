"""Phase 1: spiking vision nets, encodings, backend swap, and both experiments run end to end on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.images import image_rows, write_image_folder
from hydra.utils import instantiate
from omegaconf import OmegaConf

from brainlab.core.errors import ConfigError
from brainlab.nets.encoding import ImageEncoder
from brainlab.nets.sew_resnet import SEWResNet
from brainlab.nets.spiking_vit import SpikingViT
from brainlab.phases.vision_snn import VisionSNN
from brainlab.snn.factory import spiking_layers
from brainlab.snn.fused import neuron as fused_neuron
from brainlab.snn.sinabs_backend import neuron as sinabs_neuron
from brainlab.train import run

SHAPE = (3, 16, 16)
SMALL = [
    "data.num_classes=3", "data.image_size=16", "data.batch_size=8", "model.num_threads=1",
    "callbacks.progress_bar=null", "trainer.enable_model_summary=false",
    "callbacks.snn_media=null",  # its rasters of every spiking layer take seconds; tested on their own
]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny convolutions run fastest on one thread


def tiny_sew(backend=sinabs_neuron, **kw) -> SEWResNet:
    args = dict(layers=[1, 1], channels=[8, 16], stem="small", time_steps=3)
    return SEWResNet(SHAPE, 3, backend, **{**args, **kw})


def tiny_vit(**kw) -> SpikingViT:
    return SpikingViT(SHAPE, 3, sinabs_neuron, **{"patch_size": 4, "embed_dim": 16, "depth": 1, "heads": 2,
                                                  "time_steps": 3, **kw})


def test_encodings() -> None:
    images = torch.rand(5, 3, 4, 4)
    direct = ImageEncoder("direct", 6, mean=[0.5] * 3, std=[0.25] * 3)(images)
    assert direct.shape == (5, 6, 3, 4, 4)
    torch.testing.assert_close(direct[:, 3], (images - 0.5) / 0.25)
    torch.manual_seed(0)
    rate = ImageEncoder("rate", 400)(images)
    assert set(rate.unique().tolist()) <= {0.0, 1.0}
    assert (rate.mean(dim=1) - images).abs().max() < 0.12  # spike probability = intensity
    with pytest.raises(ConfigError, match="model.net.encoding='phase'"):
        ImageEncoder("phase", 4)
    with pytest.raises(ConfigError, match="mean/std need 3 values"):
        ImageEncoder("direct", 4, mean=[0.5], std=[0.2])


@pytest.mark.parametrize("make", [tiny_sew, tiny_vit])
@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_nets_read_out_every_step_through_factory_layers(make, encoding: str) -> None:
    net = make(encoding=encoding)
    out = net(torch.rand(4, *SHAPE))
    assert out.shape == (4, 3, 3)  # (batch, time, classes)
    assert spiking_layers(net)  # the spiking layers came from the backend factory
    out.mean(dim=1).sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(4, 3, 8, 8))


def test_direct_stem_once_equals_the_stem_at_every_step() -> None:
    net = tiny_sew().eval()
    images = torch.rand(2, *SHAPE)
    once = net.encoder.through(images, net.stem_conv)
    every = net.stem_conv(net.encoder(images).flatten(0, 1)).reshape(once.shape)
    torch.testing.assert_close(once, every)


def test_backend_swap_keeps_the_forward_pass() -> None:
    reference = tiny_sew(sinabs_neuron).eval()
    fused = tiny_sew(fused_neuron).eval()
    weighted = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
    pairs = [(a, b) for a, b in zip(reference.modules(), fused.modules(), strict=True) if isinstance(a, weighted)]
    for a, b in pairs:
        b.load_state_dict(a.state_dict())
    assert len(pairs) == 13
    images = torch.rand(3, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(fused(images), reference(images), rtol=1e-4, atol=1e-4)
    assert type(spiking_layers(fused)[0][1]) is not type(spiking_layers(reference)[0][1])


def test_bad_net_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="model.net.connect"):
        tiny_sew(connect="mul")
    with pytest.raises(ConfigError, match="one entry per stage"):
        tiny_sew(layers=[1, 1, 1])
    with pytest.raises(ConfigError, match="patch_size=3"):
        tiny_vit(patch_size=3)
    with pytest.raises(ConfigError, match="multiple of model.net.heads"):
        tiny_vit(embed_dim=15, heads=2)


def test_presets_swap_the_net(make_cfg) -> None:
    cfg = make_cfg("experiment=imagefolder_snn", "model.net=${model.presets.spiking_vit_tiny}",
                   "model.presets.spiking_vit_tiny.depth=2", *SMALL, tiny=False)
    net = instantiate(OmegaConf.to_container(cfg.model.net, resolve=True), _convert_="all")
    assert isinstance(net, SpikingViT) and len(net.blocks) == 2
    assert net(torch.rand(2, *SHAPE)).shape == (2, 4, 3)
    guide = make_cfg("experiment=imagenet_snn", tiny=False)
    assert guide.trainer.precision == "bf16-mixed" and guide.model.optimizer.lr == 3e-4
    assert guide.model.scheduler.warmup_steps == 2000 and guide.model.scheduler.min_lr == 3e-5
    assert guide.callbacks.step_checkpoint.every_n_train_steps == 1000 and guide.target == "imagenet"


def test_imagefolder_snn_learns_generated_images(make_cfg, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", {"train": 16, "val": 6}, size=20)
    cfg = make_cfg("experiment=imagefolder_snn", f"data.root={root}", *SMALL, "model.net.layers=[1,1]",
                   "model.net.channels=[8,16]", "model.net.time_steps=2", "trainer.max_epochs=8", tiny=False)
    metrics = run(cfg)
    assert metrics["test/acc"] > 0.6  # chance: 1/3
    rows = {r["id"]: r for r in json.loads((Path(cfg.paths.output_dir) / "targets.json").read_text())}
    assert rows["imagefolder"]["status"] == "not measured"
    restored = VisionSNN.load_from_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert isinstance(restored.net, SEWResNet) and restored.net.encoder.time_steps == 2


def test_imagenet_snn_runs_on_an_imagenet_layout_fixture(make_cfg, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imagenet", {"train": 6, "val": 2}, size=20)
    cfg = make_cfg("experiment=imagenet_snn", f"data.root={root}", *SMALL, "trainer=cpu",
                   "trainer.precision=32-true", "trainer.max_epochs=1", "data.num_workers=0",
                   "data.pin_memory=false", "data.val_fraction=0.2", "model.net=${model.presets.spiking_vit_tiny}",
                   "model.presets.spiking_vit_tiny.time_steps=2", tiny=False)
    metrics = run(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and "val/acc_best" in metrics
    rows = {r["id"]: r for r in json.loads((Path(cfg.paths.output_dir) / "targets.json").read_text())}
    assert rows["imagenet"]["status"] == "not measured"  # 3 fixture classes are not ImageNet


def test_hf_images_config_runs_a_saved_dataset(make_cfg, tmp_path: Path) -> None:
    import datasets  # imported here: a heavy import the other tests do not need

    datasets.Dataset.from_dict(image_rows(6, size=20)).save_to_disk(tmp_path / "hf")
    cfg = make_cfg("experiment=imagefolder_snn", "data=hf_images", f"data.path={tmp_path / 'hf'}", *SMALL,
                   "model.net.layers=[1]", "model.net.channels=[8]", "model.net.time_steps=2",
                   "trainer.max_epochs=1", tiny=False)
    metrics = run(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()
