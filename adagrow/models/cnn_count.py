"""Parameters and MACs of a growable CNN counted the way the thesis tables count them.

Our own columns use the fused deploy model and ``adagrow.measure.profile`` (Torch-Pruning's
counter).  The thesis' numbers come from another convention, which these functions reproduce to the
printed precision on every row of Tables 3-19, 3-22 and 3-23 that we pinned (tests/test_cnn_pins.py):

* **Parameters** — the released code's model *before* re-parameterisation with no branches: every
  re-parameterisable conv (and the VGG/ResNet stem) carries a redundant bias before its BN, so a unit
  counts ``W + b + γ + β``.  Our fused deploy model has ``W + b`` per unit, i.e. it is smaller by
  ``2·C_out`` per such unit and ``C_out`` per plain Conv+BN (e.g. VGG 1-2-2: 667.69K fused vs
  669.29K in the thesis, −0.24%).
* **MACs** — thop 0.1.x: convs count ``out · C_in/g · kh·kw`` (no bias), every BN ``4 × numel``
  (BN not folded!), linear ``in · out``, ReLU/SiLU/hard-sigmoid and the head's functional average pool
  nothing, the SE's pooling module ``(H·W + 1) · C``.  Torch-Pruning on our fused model gives
  0.2–0.4% less for VGG/ResNet, ~1.5% less for bottlenecks and 3–7% less for MobileNetV3 (whose
  many BNs thop counts at 4 ops per element).

A unit with a 5×5 branch counts with the fused 5×5 kernel, as the deployed model runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adagrow.models.cnn import GrowableCNN
from adagrow.models.reparam import RepUnit


def _fused_hw(unit: RepUnit) -> tuple[int, int]:
    return unit.fused_size, unit.fused_size


def _biased(model: GrowableCNN, name: str, unit: RepUnit) -> bool:
    """Whether the released code's conv for this unit has a bias (RepUnits and the non-MobileNet stem)."""
    return unit.growable or (name.startswith("stem") and model.family != "mobilenetv3")


def thesis_params(model: GrowableCNN) -> int:
    """Parameters in the thesis' convention (see module docstring)."""
    unit_names = {n for n, _ in model.units(growable_only=False)}
    total = 0
    for name, p in model.named_parameters():
        if not any(name.startswith(u + ".") for u in unit_names):
            total += p.numel()
    for name, u in model.units(growable_only=False):
        kh, kw = _fused_hw(u)
        total += u.out_ch * (u.in_ch // u.groups) * kh * kw + 2 * u.out_ch
        total += u.out_ch if _biased(model, name, u) else 0
    return total


@torch.no_grad()
def thesis_macs(model: GrowableCNN, input_size: Sequence[int]) -> int:
    """MACs at batch 1 in the thesis' (thop 0.1.x) convention (see module docstring)."""
    total = 0
    inside_units = {id(m) for _, u in model.units(growable_only=False) for m in u.modules() if m is not u}

    def unit_hook(u: RepUnit, inp, out):
        nonlocal total
        kh, kw = _fused_hw(u)
        total += out.numel() * (u.in_ch // u.groups) * kh * kw + 4 * out.numel()

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def bn_hook(m, inp, out):
        nonlocal total
        total += 4 * inp[0].numel()

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal total
        total += m.in_features * out.numel()

    def pool_hook(m, inp, out):
        nonlocal total
        total += (inp[0].numel() // out.numel() + 1) * out.numel()

    hooks = []
    for name, m in model.named_modules():
        if id(m) in inside_units:
            continue
        hook = None
        if isinstance(m, RepUnit):
            hook = unit_hook
        elif isinstance(m, nn.Conv2d):
            hook = conv_hook
        elif isinstance(m, nn.BatchNorm2d):
            hook = bn_hook
        elif isinstance(m, nn.Linear):
            hook = linear_hook
        elif isinstance(m, nn.AdaptiveAvgPool2d) and not name.startswith("head"):
            hook = pool_hook  # the released head pools with a function call, which thop does not see
        if hook is not None:
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        ref = model.head.fc.weight
        model(torch.zeros(1, *input_size, device=ref.device, dtype=ref.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total


def fused_params(model: GrowableCNN) -> int:
    """Parameters of ``fuse(model)`` without building it (cheap enough to check a budget each growth)."""
    unit_names = [n for n, _ in model.units(growable_only=False)]
    total = sum(p.numel() for n, p in model.named_parameters() if not any(n.startswith(u + ".") for u in unit_names))
    for _, u in model.units(growable_only=False):
        total += u.out_ch * (u.in_ch // u.groups) * u.fused_size**2 + u.out_ch
    return total
