"""Buffers kept between steps (`brainlab.snn.reuse`): reused only once nothing else refers to them, so no tensor a
user, a saved graph or a gradient still holds is ever overwritten; the fused layers train the same with them."""

from __future__ import annotations

import copy

import pytest
import torch

from brainlab.snn import fused
from brainlab.snn.event_linear import EventLinear
from brainlab.snn.reuse import BufferSlot, unshared


def _cycle(slot: BufferSlot, like: torch.Tensor) -> int:
    """Take a buffer and drop it (the slot keeps it), return its address."""
    return slot.take(like).data_ptr()


def test_a_free_buffer_is_handed_out_again_and_a_referenced_one_is_not() -> None:
    slot, like = BufferSlot(), torch.empty(64, 1024)
    first = _cycle(slot, like)
    assert _cycle(slot, like) == first  # nothing else refers to it
    keep = slot.take(like)  # a caller keeps the object: the next take must not hand it out
    assert slot.take(like).data_ptr() != keep.data_ptr()
    view = slot.take(like).view(-1)  # a view shares the memory
    assert slot.take(like).data_ptr() != view.data_ptr()
    numpy_view = slot.take(torch.empty(3, 3)).numpy()
    assert slot.take(torch.empty(3, 3)).data_ptr() != numpy_view.ctypes.data
    slot.take(torch.empty(2, 2))
    assert slot.take(torch.empty(3, 3)).shape == (3, 3)  # another shape: a new buffer
    assert unshared(torch.empty(2)) and not unshared(view)


def test_a_buffer_saved_for_backward_is_not_reused_until_its_graph_is_freed() -> None:
    slot, like = BufferSlot(), torch.empty(8, 8)

    class Save(torch.autograd.Function):
        """Takes a buffer from `slot` and saves it for backward (as the fused kernels do)."""

        @staticmethod
        def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
            ctx.save_for_backward(slot.take(like))
            return x * 2

        @staticmethod
        def backward(ctx, g: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
            return g * 2

    x = torch.ones(3, requires_grad=True)
    y = Save.apply(x)
    first = slot._buf.data_ptr()
    y.sum().backward(retain_graph=True)  # retained: the buffer stays saved
    z = Save.apply(x)
    second = slot._buf.data_ptr()
    assert second != first
    z.sum().backward()
    del z  # its graph is gone: the next step reuses its buffer
    Save.apply(x)
    assert slot._buf.data_ptr() == second
    del y


def test_deep_copies_and_pickles_carry_no_buffer() -> None:
    slot = BufferSlot()
    slot.take(torch.empty(4))
    assert slot._buf is not None and copy.deepcopy(slot)._buf is None and slot.__getstate__() == {"_buf": None}


SETTINGS = {  # the membrane kernel, the synaptic current before it, the ALIF / recurrent kernel
    "iaf": {"kind": "iaf"},
    "lif": {"kind": "lif", "tau_mem": 8.0},
    "lif_syn": {"kind": "lif", "tau_mem": 8.0, "tau_syn": 4.0},
    "alif_recurrent": {"kind": "alif", "tau_mem": 8.0, "tau_adapt": 20.0, "recurrent": True, "features": 16},
}


def _layer(setting: str, reuse: bool) -> torch.nn.Module:
    torch.manual_seed(0)  # the recurrent weight
    layer = fused.neuron(spike_threshold=1.0, **SETTINGS[setting])
    if not reuse:
        layer._slots = None
    return layer


def test_fused_steps_with_reused_buffers_equal_steps_without_and_keep_earlier_outputs() -> None:
    """Several training steps: the same spikes and gradients with and without the workspace; outputs, input
    gradients and graphs of earlier steps that the caller kept are never overwritten by later steps."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(6, 30, 16, generator=gen) * 2 + 0.4 for _ in range(4)]
    for setting in SETTINGS:
        runs = []
        for reuse in (True, False):
            layer, kept = _layer(setting, reuse), []
            for x in xs:
                layer.reset_states()
                inp = x.clone().requires_grad_()
                out = layer(inp)
                (out * torch.linspace(-1, 1, 16)).sum().backward()
                kept.append((out, out.detach().clone(), inp.grad, inp.grad.clone()))
            runs.append(kept)
        for (out_a, copy_a, grad_a, gcopy_a), (out_b, _, grad_b, _) in zip(*runs, strict=True):
            assert torch.equal(out_a, copy_a) and torch.equal(grad_a, gcopy_a), "a later step overwrote a kept tensor"
            assert torch.equal(out_a, out_b) and torch.equal(grad_a, grad_b)
        assert runs[0][0][1].sum() > 0


def test_a_retained_graph_backpropagates_the_same_after_a_later_step() -> None:
    torch.manual_seed(1)
    layer = _layer("iaf", reuse=True)
    x1, x2 = torch.randn(4, 20, 8) * 2 + 0.5, torch.randn(4, 20, 8) * 2 + 0.5
    inp = x1.clone().requires_grad_()
    loss = (layer(inp) * torch.linspace(-1, 1, 8)).sum()
    loss.backward(retain_graph=True)
    first = inp.grad.clone()
    layer.reset_states()
    (layer(x2.requires_grad_()) * 3).sum().backward()  # a later step while the first graph is still alive
    inp.grad = None
    loss.backward()
    torch.testing.assert_close(inp.grad, first, rtol=0, atol=0)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_fused_layer_reuses_its_buffers_across_steps(setting: str) -> None:
    layer, x = _layer(setting, reuse=True), torch.randn(4, 20, 16) * 2 + 0.5
    names = ["spikes", "vpre", "g_u"] + (["synapse", "synapse_g_x"] if setting == "lif_syn" else [])

    def step() -> list[int]:
        layer.reset_states()
        (layer(x.clone().requires_grad_()) * 2).sum().backward()
        return [layer._slots[name]._buf.data_ptr() for name in names]

    step()
    assert step() == step()


def test_event_synapse_steps_with_reused_buffers_equal_steps_without_and_keep_earlier_outputs() -> None:
    """EventLinear -> fused IAF -> EventLinear over several steps: kept outputs and gradients stay as they were."""
    gen = torch.Generator().manual_seed(2)
    xs = [(torch.rand(5, 30, 40, generator=gen) < 0.1).float() for _ in range(3)]
    runs = []
    for reuse in (True, False):
        torch.manual_seed(0)
        net = torch.nn.Sequential(EventLinear(40, 24), _layer("iaf", reuse), EventLinear(24, 6))
        if not reuse:
            for m in net:
                if isinstance(m, EventLinear):
                    m._slots = None
        kept = []
        for x in xs:
            net.zero_grad(set_to_none=True)
            net[1].reset_states()
            hidden = net[1](net[0](x))
            out = net[2](hidden)
            out.square().sum().backward()
            kept.append((out, out.detach().clone(), hidden, hidden.clone(), net[0].weight.grad.clone()))
        runs.append(kept)
    for (out_a, copy_a, hid_a, hcopy_a, gw_a), (out_b, _, hid_b, _, gw_b) in zip(*runs, strict=True):
        assert torch.equal(out_a, copy_a) and torch.equal(hid_a, hcopy_a), "a later step overwrote a kept tensor"
        assert torch.equal(out_a, out_b) and torch.equal(hid_a, hid_b) and torch.equal(gw_a, gw_b)
    assert runs[0][0][2].sum() > 0


def test_a_buffer_made_under_inference_mode_is_not_handed_to_training() -> None:
    """Lightning validates under `torch.inference_mode()`: a buffer allocated there cannot be saved for backward."""
    layer, x = _layer("iaf", reuse=True), torch.randn(3, 10, 16) * 2 + 0.5
    with torch.inference_mode():
        layer(x)
    assert layer._slots["vpre"]._buf.is_inference()
    layer.reset_states()
    inp = x.clone().requires_grad_()
    (layer(inp) * 2).sum().backward()  # would fail saving an inference tensor
    assert inp.grad is not None and not layer._slots["vpre"]._buf.is_inference()
    with torch.inference_mode():  # a normal buffer may serve inference
        ptr = layer._slots["vpre"]._buf.data_ptr()
        layer(x)
        assert layer._slots["vpre"]._buf.data_ptr() == ptr
