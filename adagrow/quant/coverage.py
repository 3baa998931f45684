"""How many re-parameterisation branches covered each kernel position of a fused convolution.

When AdaGrow fuses a unit, every branch (k×k, 1×3, 3×1, 1×1 conv, k×k average pool, identity/BN)
is zero-padded to the centre of the largest kernel and summed.  Positions covered by many branches
accumulate large, important weights (thesis §4.2.2); the thesis quantizes them first.  A fused conv
records the spatial footprint of every branch it absorbed in ``branch_kernels: list[tuple[int, int]]``
(centred; identity → (1, 1); k×k pool → (k, k)).  Example from SPEC §8: branches
{5×5, 3×3, 1×1, 1×3, 3×1} give 5 at the centre, 3 at its horizontal and vertical neighbours, 2 at the
3×3 corners and 1 on the outer ring.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adagrow.errors import ArchitectureError


def coverage_map(branch_kernels: Sequence[tuple[int, int]], kernel_size: tuple[int, int]) -> torch.Tensor:
    """Per-position branch counts ``[kh, kw]`` (int64) for centred branches inside ``kernel_size``."""
    kh, kw = kernel_size
    counts = torch.zeros(kh, kw, dtype=torch.long)
    for bh, bw in branch_kernels:
        if bh > kh or bw > kw or (kh - bh) % 2 or (kw - bw) % 2:
            raise ArchitectureError(
                f"branch kernel {bh}x{bw} cannot be centred in a fused {kh}x{kw} kernel"
            )
        top, left = (kh - bh) // 2, (kw - bw) // 2
        counts[top:top + bh, left:left + bw] += 1
    return counts


def column_coverage(module: nn.Module) -> torch.Tensor | None:
    """Coverage of every column of ``module.weight.flatten(1)``, or None without branch records.

    Column ``p`` of a conv sits at kernel position ``p mod (kh·kw)``, so the map repeats once per
    input channel of a group.  Modules without ``branch_kernels`` (timm/torchvision CNNs, Linear
    layers) return None: every column then counts the same and only the importance order applies.
    """
    kernels = getattr(module, "branch_kernels", None)
    if not kernels or not isinstance(module, nn.Conv2d):
        return None
    counts = coverage_map(kernels, tuple(module.kernel_size))
    return counts.flatten().repeat(module.in_channels // module.groups)
