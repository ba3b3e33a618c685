"""`brainlab export ckpt_path=<ckpt> [format=nir] [output=<file>]` in-process through `brainlab.cli.main`: a trained
run's checkpoint exports and reads back with the same spikes; every checkpoint NIR cannot express (a non-SNN phase,
ALIF, max pooling, the Spiking ViT, BrainAI) and every bad argument is one `error:` line, exit status 2, no
traceback, nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import nir
import pytest
import sinabs
import torch
from helpers.config import CONF, TINY, compose_cfg
from helpers.export import round_trip, untrained_run
from hydra.utils import instantiate

from brainlab import cli
from brainlab.export import export_nir, load_phase
from brainlab.train import run


@pytest.fixture
def export_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`export(*args) -> (exit status, stdout, the stderr lines)` of `brainlab export <args>`."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("BRAINLAB_CONFIG_DIR", str(CONF))  # cli.main sets it: restored after the test

    def export(*args: str) -> tuple[int, str, list[str]]:
        code = cli.main(["export", *args])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return code, captured.out, captured.err.splitlines()

    return export


def assert_one_line(result: tuple[int, str, list[str]], match: str) -> str:
    """Exit status 2 and exactly one stderr line, `error: ...` matching `match`; returns it."""
    code, _, err = result
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(match, err[0]), err[0]
    return err[0]


def test_trained_run_exports_through_the_cli_and_reads_back_with_the_same_spikes(trained_run, tmp_path: Path,
                                                                                 export_cli) -> None:
    """The session's trained run (experiment=synthetic_snn's IAF net, a Lightning checkpoint) on a real batch."""
    run_dir, cfg = trained_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] > 0, "trained"
    out = tmp_path / "net.nir"
    code, printed, err = export_cli(f"ckpt_path={ckpt}", "format=nir", f"output={out}")
    assert code == 0 and printed.splitlines()[0] == f"wrote {out}", (printed, err)
    assert "read it back with brainlab.export.read_nir" in printed, "plain sinabs floors the IF membranes"

    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("test")
    frames = next(iter(dm.test_dataloader()))[0]
    result = round_trip(load_phase(ckpt)[0], out, frames)
    result.assert_same(atol=1e-5)
    assert {type(n).__name__ for n in nir.read(str(out)).nodes.values()} == {"Input", "Affine", "IF", "Output"}

    before = out.read_bytes()
    assert_one_line(export_cli(f"ckpt_path={ckpt}", f"output={out}"), "already exists; nothing was overwritten")
    assert out.read_bytes() == before


@pytest.mark.parametrize(("args", "match"), [
    (["format=onnx"], r"format='onnx' is not supported; choose one of: nir"),
    (["outptu=x.nir"], r"unexpected argument 'outptu=x.nir'"),
    ([], r"ckpt_path=<checkpoint> is required"),
    (["ckpt_path={tmp}/missing.ckpt"], r"missing\.ckpt does not exist"),
])
def test_bad_arguments_are_one_line(args: list[str], match: str, tmp_path: Path, export_cli) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args and not args[0].startswith("ckpt_path="):
        args = [f"ckpt_path={tmp_path / 'missing.ckpt'}", *args]
    assert_one_line(export_cli(*args), match)


VIT = "model.presets.spiking_vit_tiny"
REFUSED = {
    # a non-SNN phase: MAML's Conv4 (experiment=omniglot_maml)
    "non-snn-omniglot_maml": (["experiment=omniglot_maml", "data.image_size=14", "model.net.hidden_dim=8",
                               "model.net.blocks=2"], r"Conv4 has no spiking layers: NIR export is for the SNN nets"),
    # BrainAI (experiment=brain_ai): its SNN core runs inside a transformer
    "brain_ai": (["experiment=brain_ai"], r"BrainAI: NIR export knows .* this net's layout has no export view"),
    # SEW-ResNet-18's ImageNet stem (experiment=imagenet_snn; sized down, same stem): max pooling
    "imagenet_snn": (["experiment=imagenet_snn", "data.num_classes=3", "data.image_size=32",
                      "model.net.layers=[1]", "model.net.channels=[4]"],
                     r"stem_rest\.1: MaxPool2d has no NIR 1\.0 node .* model\.net\.stem=small"),
    # the Spiking ViT presets (spiking_vit_tiny; spiking_vit is the same net, larger): attention multiplies two
    # activations
    "spiking_vit_tiny": (["experiment=imagefolder_snn", "data.num_classes=3", "data.image_size=16",
                          f"model.net=${{{VIT}}}"], r"SpikingViT: blocks\.0\.attn .* no node for a product"),
    # the ALIF neuron knob: NIR's neurons have a fixed threshold (backend=fused's ALIF: test_convert.py; max pooling,
    # model.net.pool_kind=max: test_convert.py)
    "alif": (["model.net.neuron.kind=alif", "++model.net.neuron.tau_mem=20.0",
                     "++model.net.neuron.tau_adapt=100.0", *TINY],
                    r"ALIF.* layers have no NIR equivalent \(NIR 1\.0's neurons .* fixed threshold"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_nir_cannot_express_is_refused_in_one_line(name: str, tmp_path: Path, export_cli) -> None:
    overrides, match = REFUSED[name]
    ckpt = untrained_run(tmp_path / "run", overrides)
    written = sorted(tmp_path.rglob("*"))
    assert_one_line(export_cli(f"ckpt_path={ckpt}"), match)
    assert sorted(tmp_path.rglob("*")) == written, "nothing written"


def test_fastsnn_export_cli_points_to_read_nir(tmp_path: Path, export_cli) -> None:
    from brainlab.export import read_nir

    cfg = compose_cfg(tmp_path / "fast", [*TINY, "backend=fastsnn", "trainer.limit_train_batches=1", "test=false"])
    run(cfg)
    ckpt = tmp_path / "fast" / "checkpoints" / "last.ckpt"
    code, out, _ = export_cli(f"ckpt_path={ckpt}", f"output={tmp_path / 'fast.nir'}")
    assert code == 0
    assert "brainlab.export.read_nir" in out and "plain sinabs.from_nir ignores" in out
    phase, shape, steps = load_phase(ckpt)
    x = (torch.rand(2, steps, *shape) < 0.2).float()
    spikes: list[torch.Tensor] = []
    for layer in phase.net.layers[1::2]:  # Linear, single-spike layer, Linear, single-spike layer, Linear
        layer.register_forward_hook(lambda _m, _i, out: spikes.append(out))
    phase.reset_states()
    expected = phase(x)
    assert spikes[0].sum() > 0 and max(s.sum(dim=1).max() for s in spikes) == 1, "single spikes happen"
    got = read_nir(tmp_path / "fast.nir", batch_size=2)(x.flatten(start_dim=2).reshape(2 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_real_exodus_layers_export_to_the_same_spikes(tmp_path: Path) -> None:
    pytest.importorskip("sinabs.exodus")
    overrides = [*TINY, "backend=exodus", "trainer=gpu", "trainer.limit_train_batches=2", "test=false"]
    run(compose_cfg(tmp_path / "exodus", overrides))
    ckpt = tmp_path / "exodus" / "checkpoints" / "last.ckpt"
    imported = sinabs.from_nir(nir.read(str(export_nir(ckpt))), batch_size=2)
    phase, shape, steps = load_phase(ckpt)
    phase = phase.cuda()
    x = (torch.rand(2, steps, *shape, device="cuda") < 0.2).float()
    phase.reset_states()
    expected = phase(x).cpu()
    got = imported(x.cpu().flatten(start_dim=2).reshape(2 * steps, -1))
    got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)
