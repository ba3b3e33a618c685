"""The integrated model's own parts against hand-worked references: HTM rule, engram keys, meta inner loop,
wav2vec2 frame counts, meta-device materialisation."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from brainlab.nets.brain_ai.audio_encoder import AudioEncoder
from brainlab.nets.brain_ai.engram import Engram
from brainlab.nets.brain_ai.htm_layer import SCALE, HTMLayer
from brainlab.nets.brain_ai.meta import MetaLearner
from brainlab.nets.brain_ai.snn_core import SNNCore, make_shardable
from brainlab.snn.factory import spiking_layers
from brainlab.snn.sinabs_backend import neuron


def test_htm_rule_on_a_hand_worked_case() -> None:
    htm = HTMLayer(input_bits=4, dim=8, columns=3, sparsity=0.34, connected=0.5, active_inc=0.01,
                   inactive_dec=0.002, readout_rank=2)
    assert htm.k == 1
    perm = torch.tensor([[0.6, 0.6, 0.4, -1], [0.4, 0.4, 0.6, 0.6], [0.6, 0.4, 0.4, 0.4]])
    htm.permanence.copy_(torch.where(perm < 0, -1, perm * SCALE).round().to(torch.int16))
    spikes = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 1.0]]])  # two tokens
    _, active = htm(spikes)
    # token 0 overlaps column 0 on 2 connected synapses; token 1 overlaps column 1 on 2
    assert active[0].argmax(-1).tolist() == [0, 1]
    htm.apply_learning()
    got = htm.permanence.float() / SCALE
    expected = torch.tensor([[0.61, 0.61, 0.398, -1 / SCALE], [0.398, 0.398, 0.61, 0.61], [0.6, 0.4, 0.4, 0.4]])
    assert torch.allclose(got, expected, atol=1e-4)
    assert htm.permanence[0, 3] == -1  # outside the potential pool: never grows
    htm.eval()
    htm(spikes)
    before = htm.permanence.clone()
    htm.apply_learning()  # nothing pending from an eval pass
    assert torch.equal(htm.permanence, before)


def test_htm_permanences_survive_low_precision_casts() -> None:
    htm = HTMLayer(input_bits=16, dim=8, columns=32, readout_rank=4)
    before = htm.permanence.clone()
    htm.to(torch.bfloat16)
    assert htm.permanence.dtype == torch.int16 and torch.equal(htm.permanence, before)
    assert "permanence" not in dict(htm.named_parameters())
    assert ((before == -1) | ((before >= 0) & (before <= SCALE))).all()


def test_engram_keys_follow_the_n_grams() -> None:
    eng = Engram(dim=16, orders=(2, 3), heads=2, rows=97, head_dim=4)
    ids = torch.tensor([[5, 6, 7, 5, 6, 7], [9, 6, 7, 1, 2, 3]])
    rows = eng.rows_of(ids)
    assert rows.shape == (2, 6, 4)
    assert ((rows >= 0) & (rows < 4 * 97)).all()
    assert torch.equal(rows[0, 4, :2], rows[0, 1, :2])  # bigram (5, 6) twice -> the same rows
    assert torch.equal(rows[0, 5], rows[0, 2])  # bigram and trigram (5, 6, 7) repeat
    assert torch.equal(rows[0, 2, :2], rows[1, 2, :2])  # same bigram (6, 7) in another sample
    assert not torch.equal(rows[0, 2, 2:], rows[1, 2, 2:])  # different trigrams (5,6,7) vs (9,6,7)
    h = torch.randn(2, 6, 16)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    out = eng(h, ids, mask)
    assert out.shape == h.shape and torch.all(out[1, 3:] == 0)
    out.sum().backward()
    touched = eng.table.weight.grad.abs().sum(-1).nonzero().squeeze(-1)
    assert set(touched.tolist()) <= set(rows[mask].flatten().tolist())  # only the looked-up rows learn


def test_meta_inner_loop_adapts_the_fast_weights() -> None:
    torch.manual_seed(0)
    meta = MetaLearner(dim=8, sites=2, hidden_dim=16, adapter_dim=16)
    x, y = torch.randn(32, 8), torch.randn(32, 8)
    film = meta.modulation(x)
    assert film.shape == (32, 2, 2, 8) and torch.all(film == 0)  # modulation starts as the identity
    assert torch.equal(meta(x), x)  # and so does the adapter

    def loss(params: dict) -> torch.Tensor:
        return ((meta(x, params) - y) ** 2).mean()

    adapted = meta.inner_loop(loss, steps=5, lr=0.5)
    assert loss(adapted) < loss(dict(meta.adapter.named_parameters()))
    loss(adapted).backward()  # second order: the outer gradient reaches the initial weights
    assert meta.adapter[1].weight.grad is not None


def test_audio_frames_follow_wav2vec2s_strides() -> None:
    enc = AudioEncoder(conv_channels=8, dim=16, depth=1, heads=2, pos_conv_kernel=4, pos_conv_groups=2)
    assert enc(torch.randn(2, 16000)).shape == (2, 49, 16)  # 1 s at 16 kHz: wav2vec2's 49 frames


def test_htm_overlaps_are_exact_counts_under_bf16_autocast() -> None:
    """Overlaps above 256 are not representable in bf16: under autocast the winners are still the exact ones."""
    htm = HTMLayer(input_bits=2000, dim=8, columns=256, readout_rank=4)
    bits = (torch.rand(2, 5, 2000, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    exact = bits @ (htm.permanence >= htm.connected).float().t()
    assert exact.max() > 256
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, active = htm(bits)
    tie = torch.arange(256) * 1e-6
    expected = torch.zeros_like(exact).scatter_(-1, (exact + tie).topk(htm.k, dim=-1).indices, 1.0)
    assert torch.equal(active, expected) and out.dtype == torch.bfloat16


def test_scalar_neuron_parameters_become_shardable_and_compute_the_same() -> None:
    """FSDP refuses 0-dim parameters: sinabs' threshold (frozen) and LIF's tau (trained) become 1-element
    vectors, keep their `requires_grad`, and the layer's spikes do not change."""
    import sinabs.layers as sl

    x = torch.rand(2, 30, 5) * 2
    for make in (lambda: sl.IAF(), lambda: sl.LIF(tau_mem=torch.tensor(10.0), train_alphas=False)):
        plain, shardable = make(), make_shardable(make())
        params = dict(shardable.named_parameters())
        assert params and all(p.dim() == 1 and p.numel() == 1 for p in params.values())
        assert {n: p.requires_grad for n, p in params.items()} == \
            {n: p.requires_grad for n, p in plain.named_parameters()}
        assert torch.equal(plain(x), shardable(x))


def test_snn_core_is_built_by_the_backend_and_materialises_from_meta() -> None:
    with torch.device("meta"):
        core = SNNCore(8, partial(neuron), hidden_dim=16, n_layers=4, neuron={"kind": "iaf", "spike_threshold": 0.5})
    core.to_empty(device="cpu")
    for module in core.modules():  # what FSDP does with a meta-device module
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    assert len(spiking_layers(core)) == 4
    assert all(float(m.spike_threshold) == 0.5 for _, m in spiking_layers(core))
    out, spikes = core(torch.randn(3, 7, 8))
    assert out.shape == (3, 7, 8) and spikes.shape == (3, 7, 16)
    assert set(spikes.unique().tolist()) <= set(range(0, 100))  # spike counts


@pytest.mark.parametrize("bad", [{"columns": 0}, {"sparsity": 1.5}])
def test_htm_refuses_bad_config(bad: dict) -> None:
    from brainlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="model.net.htm"):
        HTMLayer(input_bits=4, dim=4, **bad)


def checkpointed_gradients_match(tmp_path) -> None:
    from helpers.config import compose_cfg
    from hydra.utils import instantiate
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing

    from brainlab.nets.brain_ai.model import checkpoint_classes
    from brainlab.snn.factory import reset_states

    cfg = compose_cfg(tmp_path, ["experiment=brain_ai", "preset=tiny"])
    torch.manual_seed(0)
    net = instantiate(cfg.model.net, _convert_="all").eval()  # eval: no sampling in the decision heads
    data = instantiate(cfg.data, _convert_="all")
    data.setup()
    batch = next(iter(data.train_dataloader()))

    def grads() -> dict[str, torch.Tensor]:
        net.zero_grad()
        reset_states(net.modules())
        net(batch)["logits"].logsumexp(-1).sum().backward()
        return {k.replace("_checkpoint_wrapped_module.", ""): p.grad.clone()
                for k, p in net.named_parameters() if p.grad is not None}

    plain = grads()
    classes = tuple(checkpoint_classes())
    apply_activation_checkpointing(net, check_fn=lambda m: isinstance(m, classes))
    assert sum("_checkpoint_wrapped_module" in k for k, _ in net.named_parameters()) > 0
    again = grads()
    assert plain.keys() == again.keys()
    for k in plain:
        assert torch.allclose(plain[k], again[k], atol=1e-6, rtol=1e-4), k


def test_activation_checkpointing_per_block_keeps_the_gradients(tmp_path) -> None:
    """The FSDP config's checkpointing policy (recompute each block in backward), on the CPU: same gradients."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread, as the tiny preset trains
    try:
        checkpointed_gradients_match(tmp_path)
    finally:
        torch.set_num_threads(threads)
