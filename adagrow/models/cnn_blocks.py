"""The layers a growable CNN is made of (SPEC §3.2, Table 3-1).

Each *layer* is the unit of depth growth: one VGG conv, one ResNet basic block, one bottleneck, one
MobileNetV3 inverted residual.  Every Conv+BN pair is a :class:`RepUnit` so that the deploy model is
fused uniformly; only the units whose kernel is larger than 1×1 (and the transitions) are growable in
width.  Activations are modules (not functional calls) so that MAC counters see them.
"""

from __future__ import annotations

import torch
from torch import nn

from adagrow.models.reparam import RepUnit


class Layer(nn.Module):
    """Base class: a layer reports its units and its importance (mean |γ| of its BNs)."""

    def units(self) -> list[RepUnit]:
        return [m for m in self.modules() if isinstance(m, RepUnit)]

    def importance(self, signed: bool = False) -> float:
        """Mean over the layer's units of their branch-averaged mean |γ|."""
        vals = [u.importance(signed) for u in self.units()]
        return sum(vals) / len(vals)


class VGGLayer(Layer):
    """Conv3×3 + BN (re-parameterisable) + ReLU."""

    def __init__(self, width: int, kernel: int = 3, max_branch_kernel: int | None = None):
        super().__init__()
        self.unit = RepUnit(width, width, kernel, max_branch_kernel=max_branch_kernel)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.unit(x))


class BasicLayer(Layer):
    """ResNet basic block: two Conv3×3+BN units, residual add, ReLU."""

    def __init__(self, width: int, kernel: int = 3, max_branch_kernel: int | None = None):
        super().__init__()
        self.unit1 = RepUnit(width, width, kernel, max_branch_kernel=max_branch_kernel)
        self.act1 = nn.ReLU(inplace=True)
        self.unit2 = RepUnit(width, width, kernel, max_branch_kernel=max_branch_kernel)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.unit2(self.act1(self.unit1(x))) + x)


class BottleneckLayer(Layer):
    """ResNet bottleneck: 1×1 reduce to width/4, 3×3, 1×1 expand, residual add, ReLU."""

    def __init__(self, width: int, kernel: int = 3, max_branch_kernel: int | None = None):
        super().__init__()
        mid = width // 4
        self.reduce = RepUnit(width, mid, 1, growable=False)
        self.act1 = nn.ReLU(inplace=True)
        self.unit = RepUnit(mid, mid, kernel, max_branch_kernel=max_branch_kernel)
        self.act2 = nn.ReLU(inplace=True)
        self.expand = RepUnit(mid, width, 1, growable=False)
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act2(self.unit(self.act1(self.reduce(x))))
        return self.act3(self.expand(out) + x)


class SqueezeExcite(nn.Module):
    """SE of the released code: pool, 1×1 reduce (÷4, at least 8) + BN + ReLU, 1×1 expand, hard-sigmoid."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        mid = max(channels // reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = RepUnit(channels, mid, 1, growable=False)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=False)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MobileLayer(Layer):
    """MobileNetV3 inverted residual: 1×1 expand ×4, depth-wise k×k, SE, 1×1 project, add, SiLU."""

    def __init__(self, width: int, kernel: int = 3, max_branch_kernel: int | None = None):
        super().__init__()
        hidden = 4 * width
        self.expand = RepUnit(width, hidden, 1, growable=False)
        self.act1 = nn.SiLU(inplace=True)
        self.unit = RepUnit(hidden, hidden, kernel, groups=hidden, max_branch_kernel=max_branch_kernel)
        self.act2 = nn.SiLU(inplace=True)
        self.se = SqueezeExcite(hidden)
        self.project = RepUnit(hidden, width, 1, growable=False)
        self.act3 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.act2(self.unit(self.act1(self.expand(x)))))
        return self.act3(self.project(out) + x)

    def units(self) -> list[RepUnit]:
        # The SE's 1×1 unit sees a 1×1 map; its γ says nothing about the layer's importance.
        return [self.expand, self.unit, self.project]


class Transition(nn.Module):
    """Down-sampling unit between blocks: BN, then a stride-2 Conv3×3 RepUnit.

    The BN sits on the forward path (``bn_on_path=True``) so its γ trains and can score the next
    block; the released code computes it and discards the result (``bn_on_path=False``, SPEC §3.9).
    """

    def __init__(self, in_ch: int, out_ch: int, max_branch_kernel: int | None = None, bn_on_path: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.unit = RepUnit(in_ch, out_ch, 3, stride=2, max_branch_kernel=max_branch_kernel)
        self.bn_on_path = bn_on_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(self.bn(x) if self.bn_on_path else x)


class Stem(nn.Module):
    """Conv3×3 + BN + ReLU (stride 1; stride 2 for MobileNetV3 as in the released code)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.unit = RepUnit(in_ch, out_ch, 3, stride=stride, growable=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.unit(x))


class Head(nn.Module):
    """Global average pooling + Linear."""

    def __init__(self, in_ch: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))
