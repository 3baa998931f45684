"""The orders in which the OBS solver quantizes columns.

* ``obs``: natural column order (GPTQ without act-order), or an explicit order given by the caller.
* ``actorder``: GPTQ's activation order, columns by descending ``diag H``.
* ``adagrow`` (thesis §4.2.2): columns grouped by branch coverage (more branches first); inside a
  group, by the importance ``s_p = Σ_rows (quant(w_p) − w_p)² / [H⁻¹]_pp`` (the OBQ criterion summed
  over rows, because GPTQ shares one order between all rows).

The thesis does not fix the direction inside a group: "more important first" reads as descending,
OBQ's greedy rule is ascending (cheapest first).  Both are selectable; the default is the one that
won our measurement (``tests/bench_quant.py::test_sort_direction``).
"""

from __future__ import annotations

import torch

from adagrow.quant.grid import Grid, quantize

# Most important first: at 4 bits it gave ~1.5% lower layer output error than ascending, for both
# adagrow and adagrow-rerank (tests/bench_quant.py::test_sort_direction, synthetic fused convs and
# Linear layers); at 3 bits the two were within 0.3%.  Re-measure on real checkpoints.
DEFAULT_DESCENDING = True


def importance(weight: torch.Tensor, hinv_diag: torch.Tensor, grid: Grid,
               cols: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_rows (quant(w_p) − w_p)² / [H⁻¹]_pp`` for every column of ``weight`` ``[rows, cols]``.

    ``cols`` are the original indices of the columns (they choose each column's quantization
    group); by default ``0..cols-1``.
    """
    if cols is None:
        cols = torch.arange(weight.shape[1], device=weight.device)
    scale, zero = grid.columns(cols)
    err = quantize(weight, scale, zero, grid.maxq) - weight
    return err.pow(2).sum(0) / hinv_diag


def coverage_first(score: torch.Tensor, coverage: torch.Tensor | None, descending: bool) -> torch.Tensor:
    """Permutation sorting by coverage (descending), ties broken by ``score`` in the given direction.

    Both sorts are stable, so equal keys keep their column order and the result is deterministic.
    """
    perm = torch.argsort(score, descending=descending, stable=True)
    if coverage is None:
        return perm
    by_cov = torch.argsort(coverage.to(score.device)[perm], descending=True, stable=True)
    return perm[by_cov]


def act_order(hessian: torch.Tensor) -> torch.Tensor:
    """GPTQ's activation order: columns by descending ``diag H`` (stable)."""
    return torch.argsort(torch.diagonal(hessian), descending=True, stable=True)
