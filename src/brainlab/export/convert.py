"""A trained net as an export view: plain sinabs neurons and stateless leaves that NIR has a node for.

`to_sinabs(net)` copies the net with every spiking layer replaced by the plain sinabs layer its backend's plug maps
it to (`Backend.to_sinabs`); `export_view(net)` then lays the copy out as nested `nn.Sequential`s of leaves and
`Residual` sums (what `nirtorch.torch_to_nir` traces): per-step wrappers unwrapped, batch norm folded into the conv
before it, each LIF's input scaling folded into the affine layer before it. What NIR 1.0 cannot express is refused
in one line naming the layer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator

import sinabs
import sinabs.layers as sl
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from brainlab.core.errors import ConfigError
from brainlab.nets.conv_snn import ConvSNN, PerStep
from brainlab.nets.readout_snn import LeakyReadout
from brainlab.nets.sew_resnet import SEWBlock, SEWResNet
from brainlab.nets.snn import FeedForwardSNN
from brainlab.nets.spiking_vit import SpikingViT
from brainlab.snn.factory import is_spiking
from brainlab.snn.fastsnn import steps_tau
from brainlab.snn.plug import backend_of, no_nir

# the stateless leaves an export view may hold (each has a NIR node, see graph.py)
LEAVES = (nn.Linear, nn.Conv2d, nn.AvgPool2d, sl.SumPool2d, nn.Flatten)
SKIPPED = (nn.Identity, nn.Dropout)


def spiking(module: nn.Module) -> bool:
    return is_spiking(module) or isinstance(module, sl.StatefulLayer | LeakyReadout)


def spiking_layers(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(qualified name, layer) of each spiking layer, not looking inside one (a recurrent layer holds a Linear)."""
    for name, child in module.named_children():
        qualified = f"{prefix}.{name}" if prefix else name
        if spiking(child):
            yield qualified, child
        else:
            yield from spiking_layers(child, qualified)


def to_sinabs(net: nn.Module) -> nn.Module:
    """A copy of `net` whose spiking layers are plain sinabs IAF/LIF (or their recurrent forms) / ExpLeak layers
    with the same (trained) parameters; the original is left untouched."""
    if spiking(net):
        return fresh(net, sinabs_layer(net))
    memo = {id(layer): fresh(layer, sinabs_layer(layer)) for _, layer in spiking_layers(net)}  # refuse first
    return copy.deepcopy(net, memo)  # the memo puts the converted layers in place of the originals


def fresh(original: nn.Module, converted: nn.Module) -> nn.Module:
    """A mapping may hand back the layer itself (sinabs's own IAF/LIF): copy it, the export changes it."""
    return copy.deepcopy(converted) if converted is original else converted


def sinabs_layer(layer: nn.Module) -> nn.Module:
    """The plain sinabs equivalent of one spiking layer, by the mapping of the backend that made it."""
    if isinstance(layer, LeakyReadout):
        return sinabs_readout(layer)
    plug = backend_of(layer)
    if plug is None or plug.to_sinabs is None:
        raise no_nir(layer)
    return plug.to_sinabs(layer)


def sinabs_readout(readout: LeakyReadout) -> sl.ExpLeak:
    """fastsnn's leaky readout `V_t = beta V_(t-1) + I_t` as sinabs's `ExpLeak(norm_input=False)` (what
    sinabs's NIR import builds from a `nir.LI` node with `r = 1`)."""
    return sl.ExpLeak(tau_mem=steps_tau(readout.beta), norm_input=False)


def fold_input_scaling(module: nn.Module) -> None:
    """Move each LIF's input normalisation `(1 - alpha)` into the Linear/Conv before it (exact, in place).

    sinabs's LIF scales its input by `1 - alpha` (`norm_input`); sinabs's NIR import ignores the NIR input
    resistance `r` and reads every LIF back without that scaling. Folding the factor into the preceding affine
    layer (and into a recurrent layer's own weight) gives a network with the same dynamics whose NIR (with
    `r = 1 / (1 - alpha)`) reads back exactly. A LIF with no affine layer right before it keeps its scaling
    (`r = 1`, NIR's own equation), which `read_nir` reads exactly.
    """
    children = list(module.children())
    for before, layer in zip(children, children[1:], strict=False):
        affine = isinstance(before, nn.Linear | nn.Conv1d | nn.Conv2d)
        if affine and type(layer) in (sl.LIF, sl.ExpLeak, sl.LIFRecurrent) and layer.norm_input:
            scale = (1 - layer.alpha_mem_calculated.detach()).reshape(-1)
            shape = (-1,) + (1,) * (before.weight.dim() - 1)
            with torch.no_grad():
                before.weight.mul_(scale.reshape(shape) if scale.numel() > 1 else scale)
                if before.bias is not None:
                    before.bias.mul_(scale)
                if isinstance(layer, sl.LIFRecurrent):
                    rec = layer.rec_connect.weight
                    rec.mul_(scale.reshape(-1, 1) if scale.numel() > 1 else scale)
            layer.norm_input = False
    for child in children:
        fold_input_scaling(child)


class Residual(nn.Module):
    """`body(x) + shortcut(x)` (`shortcut=None`: `x`): a SEW block with `connect=add`; NIR sums the two edges."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return self.body(x) + x
        return self.body(x) + self.shortcut(x)


class GlobalAvgPool(nn.Module):
    """The mean over height and width (a NIR AvgPool2d whose kernel is the whole frame, sized at export)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)


def leaves(module: nn.Module, name: str) -> nn.Module | None:
    """`module` (of a sinabs copy) as a tree of Sequentials over export leaves; None for an identity."""
    if isinstance(module, PerStep):
        return leaves(module.module, name)
    if isinstance(module, nn.Sequential):
        kids = list(module.named_children())
        if len(kids) == 2 and isinstance(kids[0][1], nn.Conv2d) and isinstance(kids[1][1], nn.BatchNorm2d):
            return fold_batch_norm(kids[0][1], kids[1][1])
        out = [leaves(child, f"{name}.{key}") for key, child in kids]
        return nn.Sequential(*[m for m in out if m is not None])
    if isinstance(module, SKIPPED):
        return None
    if spiking(module) or isinstance(module, LEAVES):
        if isinstance(module, nn.Conv2d) and isinstance(module.padding, str):
            raise ConfigError(f"{name}: Conv2d padding={module.padding!r}; NIR export needs numeric padding")
        return module
    if isinstance(module, nn.MaxPool2d | nn.AdaptiveMaxPool2d):
        raise ConfigError(f"{name}: {type(module).__name__} has no NIR 1.0 node (NIR pools only by average or sum): "
                          "export a net trained without max pooling (ConvSNN: model.net.pool_kind=avg; SEW-ResNet: "
                          "model.net.stem=small)")
    raise ConfigError(f"{name}: {type(module).__name__} has no NIR node in brainlab's export")


def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """The conv with the (evaluation-mode) batch norm after it folded in: equal up to float rounding."""
    return fuse_conv_bn_eval(copy.deepcopy(conv).eval(), bn.eval())


def flat_view(net: FeedForwardSNN) -> tuple[nn.Module, tuple[int, ...]]:
    """The feed-forward stack over the flattened input features of one step."""
    return View(layers=leaves(net.layers, "layers")), (math.prod(net.input_shape),)


def conv_view(net: ConvSNN) -> tuple[nn.Module, tuple[int, ...]]:
    """The conv stack over one `(channels, height, width)` frame."""
    return View(layers=leaves(net.layers, "layers")), tuple(net.input_shape)


def sew_view(net: SEWResNet) -> tuple[nn.Module, tuple[int, ...]]:
    """Stem, residual blocks, global average pool and readout over one encoded frame (`net.encoder(images)[:, t]`)."""
    stem = nn.Sequential(*[m for m in (leaves(net.stem_conv, "stem_conv"), leaves(net.stem_rest, "stem_rest"))
                           if m is not None])
    blocks = []
    for i, block in enumerate(net.blocks):
        blocks.append(residual(block, f"blocks.{i}"))
    head = nn.Sequential(GlobalAvgPool(), nn.Flatten(), net.readout)
    return View(stem=stem, blocks=nn.Sequential(*blocks), readout=head), tuple(net.input_shape)


def residual(block: SEWBlock, name: str) -> Residual:
    joined = block.connect(torch.zeros(1), torch.ones(1)).item(), block.connect(torch.ones(1), torch.ones(1)).item()
    if joined != (1.0, 2.0):
        kind = "and (A * S)" if joined == (0.0, 1.0) else "iand ((1 - A) * S)"
        raise ConfigError(f"{name}: SEW connect={kind.split()[0]} multiplies two spike trains {kind.split(' ', 1)[1]}"
                          "; NIR has no node for a product of activations: export a SEW-ResNet with connect=add")
    body = leaves(block.body, f"{name}.body")
    shortcut = leaves(block.shortcut, f"{name}.shortcut")
    return Residual(body, shortcut if shortcut is not None and len(shortcut) else None)


def vit_view(net: SpikingViT) -> tuple[nn.Module, tuple[int, ...]]:
    raise ConfigError("SpikingViT: blocks.0.attn (spiking self-attention) multiplies activations (Q K^T V); NIR 1.0 "
                      "has no node for a product of two activations, so a spiking transformer cannot be exported")


class View(nn.Module):
    """The traced export view: its children in order, applied one after the other."""

    def __init__(self, **parts: nn.Module) -> None:
        super().__init__()
        for key, part in parts.items():
            self.add_module(key, part)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the NIR input node's name
        for part in self.children():
            input = part(input)
        return input


VIEWS: dict[type, Callable[..., tuple[nn.Module, tuple[int, ...]]]] = {
    SpikingViT: vit_view, SEWResNet: sew_view, ConvSNN: conv_view, FeedForwardSNN: flat_view,
}


def stack_view(body: nn.Module) -> nn.Module:
    """The export view of a layer stack (e.g. a net's `layers`): converted, unwrapped, input scaling folded."""
    view = View(layers=leaves(to_sinabs(body), "layers"))
    prepare(view)
    return view


def prepare(view: nn.Module) -> None:
    for module in view.modules():
        if isinstance(module, sinabs.layers.StatefulLayer):
            module.reset_states()
    fold_input_scaling(view)


def export_view(net: nn.Module) -> tuple[nn.Module, tuple[int, ...]]:
    """(the export view of a trained net, the shape of its input at one time step); refusals name the layer."""
    if not any(True for _ in spiking_layers(net)):
        raise ConfigError(f"{type(net).__name__} has no spiking layers: NIR export is for the SNN nets "
                          "(FeedForwardSNN, ReadoutSNN, ConvSNN, SEWResNet)")
    make = next((view for cls, view in VIEWS.items() if isinstance(net, cls)), None)
    if make is None:
        raise ConfigError(f"{type(net).__name__}: NIR export knows FeedForwardSNN, ReadoutSNN, ConvSNN and "
                          "SEWResNet; this net's layout has no export view")
    if isinstance(net, SpikingViT):
        make(net)
    net = to_sinabs(net.eval())
    view, shape = make(net)
    prepare(view)
    return view, shape
