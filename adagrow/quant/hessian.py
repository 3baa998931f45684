"""The layer-wise Hessian ``H = (2/n) Σ x xᵀ`` of the reconstruction loss ‖WX − ŴX‖².

``x`` is one input *column* of the layer seen as a matrix product: a Linear layer's input row as is
(all leading dimensions are samples), a convolution's input unfolded into patches with the conv's
own kernel size, stride, padding and dilation.  Unfolding yields the column index
``p = c·kh·kw + i·kw + j``, the same order as ``weight.flatten(1)``, so ``H`` indexes the columns of
the flattened weight directly.

Grouped convolutions (depth-wise included) get one Hessian per group, ``[groups, d, d]`` with
``d = (C_in / groups)·kh·kw``: each group's output channels see only that group's inputs, so the
per-group problems are independent and exact.  ``n`` counts input columns (patches or tokens); the
scale does not matter to the solvers, whose damping is relative to ``mean(diag H)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def layer_columns(module: nn.Module, inp: torch.Tensor) -> torch.Tensor:
    """The layer input as columns ``[groups, d, n]`` (float32) for a Conv2d or Linear ``module``."""
    if isinstance(module, nn.Linear):
        x = inp.reshape(-1, inp.shape[-1]).t()
        return x.float().unsqueeze(0)
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise NotImplementedError("string padding: build the conv with explicit padding to quantize it")
        cols = F.unfold(inp.float(), module.kernel_size, dilation=module.dilation,
                        padding=module.padding, stride=module.stride)  # [N, C·kh·kw, L]
        g = module.groups
        d = cols.shape[1] // g
        # [N, G, d, L] -> [G, d, N·L]
        return cols.reshape(cols.shape[0], g, d, -1).permute(1, 2, 0, 3).reshape(g, d, -1)
    raise TypeError(f"cannot quantize {type(module).__name__}: only Conv2d and Linear")


class HessianAccumulator:
    """Running average of ``2 x xᵀ`` over every input column a layer has seen.

    Call :meth:`add` with the layer's input (e.g. from a forward pre-hook); read :attr:`hessian`.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.hessian: torch.Tensor | None = None  # [groups, d, d]
        self.samples = 0

    @torch.no_grad()
    def add(self, inp: torch.Tensor) -> None:
        """Fold one batch of layer inputs into the running Hessian."""
        x = layer_columns(self.module, inp)
        n = x.shape[-1]
        if self.hessian is None:
            self.hessian = torch.zeros(x.shape[0], x.shape[1], x.shape[1], device=x.device)
        total = self.samples + n
        # Running mean keeps the magnitudes bounded whatever the calibration size.
        self.hessian.mul_(self.samples / total)
        self.hessian.baddbmm_(x, x.transpose(1, 2), alpha=2.0 / total)
        self.samples = total


def output_error(weight: torch.Tensor, qweight: torch.Tensor, hessian: torch.Tensor) -> tuple[float, float]:
    """``(absolute, relative)`` output error of replacing ``weight`` by ``qweight``.

    With ``H = 2/n Σ x xᵀ`` over the calibration inputs, ``tr(ΔW H ΔWᵀ) / 2`` is the mean squared
    output error per input column, ``‖WX − ŴX‖²_F / n`` (bias excluded: it is not quantized); the
    relative error divides ``‖WX − ŴX‖²_F`` by ``‖WX‖²_F``.  ``hessian`` is ``[d, d]`` or one per
    group ``[groups, d, d]`` (rows of the weight split evenly between groups).
    """
    H = hessian.float() if hessian.dim() == 3 else hessian.float().unsqueeze(0)
    g = H.shape[0]
    W = weight.detach().float().flatten(1).reshape(g, -1, H.shape[-1])
    D = qweight.detach().float().flatten(1).reshape(g, -1, H.shape[-1]) - W
    err = torch.einsum("gri,gij,grj->", D, H, D).item() / 2
    ref = torch.einsum("gri,gij,grj->", W, H, W).item() / 2
    return err, err / ref if ref > 0 else float("nan")
