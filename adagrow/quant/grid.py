"""Uniform integer grids: fitting a scale and zero point, and rounding onto the grid.

One definition serves every method, so that "on the grid" means the same thing for round-to-nearest,
the OBS solvers and the deployed INT8 graph.  It follows the reference GPTQ quantizer (min/max,
range forced to include 0), so a layer quantized here can be compared with GPTQ's output:

* ``maxq = 2**bits - 1``; a value ``x`` becomes ``scale * (clamp(round(x / scale) + zero, 0, maxq) - zero)``.
* asymmetric: ``scale = (max - min) / maxq``, ``zero = round(-min / scale)``;
* symmetric: ``scale = 2 * max|x| / maxq``, ``zero = (maxq + 1) / 2``.  The integer codes minus the
  zero point are then the signed range ``[-2**(bits-1), 2**(bits-1) - 1]`` with zero point 0, which
  is exactly a symmetric INT8 tensor (ONNX QuantizeLinear / TensorRT).

Scales are fitted per output row (per channel), or per row and per group of ``group_size``
consecutive input columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """Per-row (and per-group) quantization parameters of a 2-D weight ``[rows, cols]``.

    ``scale`` and ``zero`` have shape ``[rows, n_groups]``; column ``j`` uses group
    ``j // group_size`` (one group spanning all columns when ``group_size`` is -1).
    """

    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int

    @property
    def maxq(self) -> int:
        return 2**self.bits - 1

    def columns(self, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero of the given original column indices, each ``[rows, len(cols)]``."""
        groups = torch.zeros_like(cols) if self.group_size <= 0 else cols // self.group_size
        return self.scale[:, groups], self.zero[:, groups]

    def round_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """Every column of ``weight`` ``[rows, cols]`` rounded onto its group's grid, dequantized."""
        scale, zero = self.columns(torch.arange(weight.shape[1], device=weight.device))
        return quantize(weight, scale, zero, self.maxq)


def fit_params(x: torch.Tensor, bits: int, sym: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point per row of ``x`` ``[rows, n]``, each returned as ``[rows, 1]``."""
    maxq = 2**bits - 1
    zeros = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    xmin = torch.minimum(x.min(dim=1).values, zeros)
    xmax = torch.maximum(x.max(dim=1).values, zeros)
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    # An all-zero row would give scale 0; GPTQ widens it to [-1, 1] so the row maps to code `zero`.
    dead = (xmin == 0) & (xmax == 0)
    xmin = torch.where(dead, -torch.ones_like(xmin), xmin)
    xmax = torch.where(dead, torch.ones_like(xmax), xmax)
    scale = (xmax - xmin) / maxq
    if sym:
        zero = torch.full_like(scale, (maxq + 1) / 2)
    else:
        zero = torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def fit_grid(weight: torch.Tensor, bits: int, sym: bool, group_size: int = -1) -> Grid:
    """Fit per-row (``group_size=-1``) or per-row-per-group parameters to a 2-D weight."""
    rows, cols = weight.shape
    if group_size <= 0 or group_size >= cols:
        scale, zero = fit_params(weight, bits, sym)
        return Grid(scale, zero, bits, -1)
    scales, zeros = [], []
    for start in range(0, cols, group_size):
        s, z = fit_params(weight[:, start:start + group_size], bits, sym)
        scales.append(s)
        zeros.append(z)
    return Grid(torch.cat(scales, 1), torch.cat(zeros, 1), bits, group_size)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, maxq: int) -> torch.Tensor:
    """Round ``x`` onto the grid and return the dequantized values (same shape as ``x``)."""
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def codes(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, maxq: int) -> torch.Tensor:
    """The integer codes (0..maxq, as float) of ``x`` on the grid."""
    return torch.clamp(torch.round(x / scale) + zero, 0, maxq)


def quantize_rtn(weight: torch.Tensor, bits: int, sym: bool = False, group_size: int = -1) -> torch.Tensor:
    """Round-to-nearest quantization of a 2-D weight; returns the dequantized weight."""
    return fit_grid(weight, bits, sym, group_size).round_weight(weight)
