"""Put every convolution that feeds a BatchNorm back at its initialisation scale, without changing the function.

Behind batch normalisation a convolution's weight scale is free, and a recipe with coupled L2 under Adam (the
thesis') lets it shrink: on MNIST's converged ResNet-18 four layers end with a weight std of 1e-5 to 1e-4.  A
method that then trains with a prior whose scale follows the layer's (BAMC) meets an optimizer that moves every
weight by about its learning rate per step, a thousand times that scale (docs/methods/bamc.md, "the prior's
scale").  Rescaling such a layer by c (and its BatchNorm so that the network computes the same function) puts
all layers where the recipe's learning rate was chosen for: He-normal's std √(2 / fan_in).

The BatchNorm is adjusted exactly for evaluation: running mean × c, running variance × c², and γ so that
γ' / √(c²·v + ε) · c = γ / √(v + ε) (ε matters: a layer with weights of 1e-5 has output variances far below
ε = 1e-5, where its BatchNorm scales rather than normalises).  :func:`rescale_to_init` checks the result on an
input batch, as RepVGG's verify step checks a re-parameterisation, and refuses to return a model that changed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adagrow.errors import AdaGrowError

ConvBN = tuple[str, str]  # (convolution's name, the BatchNorm's name that normalises its output)


def conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[ConvBN]:
    """The (conv, BatchNorm) pairs where the BatchNorm's input is exactly the convolution's output, untouched by
    any in-place op, found by running ``example`` through the model (eval mode: no running statistic moves)."""
    produced: dict[int, tuple[str, int]] = {}  # id of a conv's output -> (the conv, the tensor's version then)
    pairs: list[ConvBN] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []

    def after_conv(module, _inputs, output):
        produced[id(output)] = (names[module], output._version)

    def before_bn(module, inputs):
        source = produced.get(id(inputs[0]))
        # the same tensor object, unmodified: an in-place op in between (ReLU_, a residual +=) bumps its version
        if source is not None and source[1] == inputs[0]._version:
            pairs.append((source[0], names[module]))

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d):
            hooks.append(module.register_forward_pre_hook(before_bn))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(pairs))  # a module called twice is rescaled once


def init_std(conv: nn.Conv2d) -> float:
    """He-normal's std for the layer (fan in): the scale its weights start at, and its learning rate is set for."""
    fan_in = conv.weight[0].numel()
    return math.sqrt(2.0 / fan_in)


@torch.no_grad()
def rescale_to_init(model: nn.Module, example: torch.Tensor, rtol: float = 1e-3) -> dict[str, float]:
    """Rescale each BatchNorm-fed convolution of ``model`` (in place) to :func:`init_std`; {conv name: factor}.

    Raises, the model restored, if its evaluation output on ``example`` moved by more than ``rtol`` of its scale
    (a convolution whose output also feeds something else than its BatchNorm would do that)."""
    pairs = conv_bn_pairs(model, example)
    if not pairs:
        return {}
    was_training = model.training
    model.eval()
    before = model(example).float()
    saved = {k: v.clone() for k, v in model.state_dict().items()}  # restored if the check fails
    factors = {}
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        std = float(conv.weight.float().std())
        if not (std > 0 and bn.running_var is not None and bn.running_mean is not None):
            continue  # an all-zero layer has no direction to keep; a BatchNorm without statistics cannot be matched
        c = init_std(conv) / std
        var = bn.running_var.clone()
        conv.weight.mul_(c)
        if conv.bias is not None:
            conv.bias.mul_(c)
        bn.running_mean.mul_(c)
        bn.running_var.mul_(c * c)
        if bn.weight is not None:  # without γ, exact only where the variance dwarfs ε: the check below says
            bn.weight.mul_(torch.sqrt((c * c * var + bn.eps) / (var + bn.eps)) / c)
        factors[conv_name] = c
    after = model(example).float()
    model.train(was_training)
    moved = float((after - before).abs().max())
    scale = float(before.abs().max()) or 1.0
    if moved > rtol * scale:
        model.load_state_dict(saved)
        raise AdaGrowError(f"rescaling the BatchNorm-fed convolutions changed the model's output by {moved:.3g} "
                           f"(of {scale:.3g}); a convolution's output may feed more than its BatchNorm")
    return factors
