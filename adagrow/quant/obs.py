"""Layer-level quantization: round-to-nearest and OBS error compensation in the GPTQ manner.

:func:`quantize_weight` is the one entry point; it is written to be checked against reference
GPTQ (``IST-DASLab/gptq``, ``fasterquant``) column by column:

1. Dead columns (``diag H == 0``: an input that is always zero) get ``H_pp = 1`` and weight 0.
2. The quantization grid is fitted on the whole weight before the solve (per output row, or per
   row and group of ``group_size`` original columns).  In natural order with groups, each group's
   grid is instead refitted when the solver reaches it, from the partly updated weight, as GPTQ
   does by default.  Any permuted order uses the grids fitted up front (GPTQ ``static_groups``),
   so groups stay contiguous in the original layout and deployable without a gather index.
3. ``H += damp · mean(diag H) · I``; ``U`` = upper Cholesky factor of ``H⁻¹`` (float64).
4. Columns are quantized one at a time in the chosen order; the error ``(w − q) / U_pp`` is
   spread over the not yet quantized columns of the block, and lazily over the rest after each
   block of ``block_size`` columns.  The permutation is undone at the end.

``adagrow-rerank`` cannot precompute ``U`` because its order depends on the updates; it keeps the
full ``H⁻¹`` and downdates it after every column (``H⁻¹ −= H⁻¹_{:p} H⁻¹_{p:} / H⁻¹_pp``), which
is the same OBS step, costing O(cols²) per column instead of GPTQ's blocked updates.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from adagrow.errors import AdaGrowError
from adagrow.quant.grid import Grid, fit_grid, fit_params, quantize
from adagrow.quant.order import DEFAULT_DESCENDING, act_order, coverage_first, importance

METHODS = ("rtn", "obs", "actorder", "adagrow", "adagrow-rerank")


class QuantizedWeight(NamedTuple):
    """The dequantized weight (input shape), the order its columns were quantized in, and its grid.

    ``perm[k]`` is the original index of the k-th column quantized (identity for ``rtn``/``obs``).
    ``grid`` holds the scales and zero points every value of ``weight`` lies on (for GPTQ's
    natural-order groups, the ones refitted during the solve), so a deployed layer can use exactly
    these and never re-round the weight onto another grid.
    """

    weight: torch.Tensor
    perm: torch.Tensor
    grid: Grid


def quantize_weight(
    weight: torch.Tensor,
    hessian: torch.Tensor | None,
    bits: int,
    method: str,
    group_size: int = -1,
    sym: bool = False,
    damp: float = 0.01,
    block_size: int = 128,
    order: torch.Tensor | None = None,
    *,
    coverage: torch.Tensor | None = None,
    descending: bool = DEFAULT_DESCENDING,
) -> QuantizedWeight:
    """Quantize one layer's weight to ``bits`` with ``method`` and return it dequantized.

    Args:
        weight: ``[rows, cols]`` (Linear) or ``[out, in/groups, kh, kw]`` (conv, flattened to
            columns ``c·kh·kw + i·kw + j`` internally and reshaped back).
        hessian: ``[cols, cols]``, ``2/n Σ x xᵀ`` over the layer's calibration inputs (see
            :mod:`adagrow.quant.hessian`); unused (may be None) for ``rtn``.
        bits: grid width (4 for W4A16, 8 for INT8).
        method: ``rtn`` | ``obs`` | ``actorder`` | ``adagrow`` | ``adagrow-rerank``.
        group_size: -1 for one grid per output row, else one per row and group of columns.
        sym: symmetric grid (zero point in the middle) instead of min/max.
        damp: relative damping, ``damp · mean(diag H)`` is added to the diagonal.
        block_size: columns per lazy-update block of the GPTQ solver.
        order: only for ``obs``: an explicit column order (a permutation of ``range(cols)``).
        coverage: only for ``adagrow*``: ``[cols]`` branch counts per column (from
            :func:`adagrow.quant.coverage.column_coverage`), or ``[kh, kw]`` per kernel position of a
            4-D weight; None means all columns count the same (importance order only).
        descending: ``adagrow*`` within-coverage direction: most important column first (True)
            or least important first (False).

    Returns:
        :class:`QuantizedWeight` ``(weight, perm, grid)``; ``weight`` has the input's shape and dtype.
    """
    if method not in METHODS:
        raise AdaGrowError(f"unknown quantization method {method!r}; choose one of {', '.join(METHODS)}")
    if order is not None and method != "obs":
        raise AdaGrowError("order= is only used by method 'obs' (the other methods choose their own order)")
    if coverage is not None and not method.startswith("adagrow"):
        raise AdaGrowError("coverage= is only used by the 'adagrow' methods")
    shape, dtype = weight.shape, weight.dtype
    W = weight.detach().flatten(1).float().clone()
    rows, cols = W.shape
    identity = torch.arange(cols, device=W.device)
    if method == "rtn":
        grid = fit_grid(W, bits, sym, group_size)
        return QuantizedWeight(grid.round_weight(W).reshape(shape).to(dtype), identity, grid)
    if hessian is None or hessian.shape != (cols, cols):
        raise ValueError(f"hessian must be [{cols}, {cols}] for a weight with {cols} columns")

    H = hessian.detach().float().to(W.device).clone()
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    grid = fit_grid(W, bits, sym, group_size)
    hinv = _damped_inverse(H, damp)
    cov = _column_coverage(coverage, shape, cols, W.device)

    if method == "adagrow-rerank":
        q, perm = _solve_rerank(W, hinv, grid, cov, descending)
        return QuantizedWeight(q.reshape(shape).to(dtype), perm, grid)
    if method == "obs":
        perm = identity if order is None else _check_perm(order.to(W.device), cols)
    elif method == "actorder":
        perm = act_order(H)
    else:  # adagrow
        perm = coverage_first(importance(W, torch.diagonal(hinv).float(), grid), cov, descending)
    dynamic = grid.group_size > 0 and bool(torch.equal(perm, identity))
    q, grid = _solve_fixed(W, hinv, perm, grid, sym, dynamic, block_size)
    return QuantizedWeight(q.reshape(shape).to(dtype), perm, grid)


def _damped_inverse(H: torch.Tensor, damp: float) -> torch.Tensor:
    """``(H + damp·mean(diag H)·I)⁻¹`` in float64 via Cholesky."""
    Hd = H.double()
    Hd.diagonal().add_(damp * torch.diagonal(Hd).mean())
    try:
        return torch.cholesky_inverse(torch.linalg.cholesky(Hd))
    except torch.linalg.LinAlgError as exc:
        raise AdaGrowError(
            f"the layer Hessian is not positive definite even with damping {damp}: raise damp "
            "or use more calibration data"
        ) from exc


def _column_coverage(coverage: torch.Tensor | None, shape: torch.Size, cols: int,
                     device: torch.device) -> torch.Tensor | None:
    if coverage is None:
        return None
    coverage = coverage.to(device)
    if coverage.dim() == 2 and len(shape) == 4 and tuple(coverage.shape) == tuple(shape[2:]):
        coverage = coverage.flatten().repeat(shape[1])
    if coverage.shape != (cols,):
        raise ValueError(f"coverage must be [{cols}] per column or [kh, kw] per kernel position")
    return coverage


def _check_perm(order: torch.Tensor, cols: int) -> torch.Tensor:
    order = order.long()
    if order.shape != (cols,) or not torch.equal(torch.sort(order).values, torch.arange(cols, device=order.device)):
        raise ValueError(f"order must be a permutation of range({cols})")
    return order


def _solve_fixed(W: torch.Tensor, hinv: torch.Tensor, perm: torch.Tensor, grid: Grid, sym: bool,
                 dynamic: bool, block_size: int) -> tuple[torch.Tensor, Grid]:
    """GPTQ's blocked sequential OBS in the order ``perm``; returns the dequantized weight and its
    grid (``grid`` itself, or with ``dynamic`` the group grids refitted during the solve)."""
    cols = W.shape[1]
    W = W[:, perm].clone()
    U = torch.linalg.cholesky(hinv[perm][:, perm], upper=True).float()
    scales, zeros = grid.columns(perm)  # static grids, per permuted column
    fitted: list[tuple[torch.Tensor, torch.Tensor]] = []  # dynamic grids, one per group
    Q = torch.zeros_like(W)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1 = W[:, i1:i2].clone()
        err1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            j = i1 + i
            if dynamic:
                if j % grid.group_size == 0:
                    # Like reference GPTQ: fitted on W, which holds this block's columns as they
                    # were when the block started.
                    scale, zero = fit_params(W[:, j:j + grid.group_size], grid.bits, sym)
                    fitted.append((scale, zero))
            else:
                scale, zero = scales[:, j:j + 1], zeros[:, j:j + 1]
            w = W1[:, i:i + 1]
            q = quantize(w, scale, zero, grid.maxq)
            Q[:, j:j + 1] = q
            err = (w - q) / U[j, j]
            W1[:, i:] -= err * U[j:j + 1, j:i2]
            err1[:, i:i + 1] = err
        W[:, i2:] -= err1 @ U[i1:i2, i2:]
    if dynamic:
        grid = Grid(torch.cat([s for s, _ in fitted], 1), torch.cat([z for _, z in fitted], 1), grid.bits,
                    grid.group_size)
    return Q[:, torch.argsort(perm)], grid


def _solve_rerank(W: torch.Tensor, hinv: torch.Tensor, grid: Grid, coverage: torch.Tensor | None,
                  descending: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential OBS that re-ranks the remaining columns after every compensation step.

    At each step: among the not yet quantized columns of the highest remaining coverage, take the
    most (or least) important by the current ``importance`` (current weights, current downdated
    ``H⁻¹``); quantize it, compensate the remaining columns, downdate ``H⁻¹``.
    """
    cols = W.shape[1]
    W = W.clone()
    hinv = hinv.float().clone()
    all_cols = torch.arange(cols, device=W.device)
    remaining = torch.ones(cols, dtype=torch.bool, device=W.device)
    cov = torch.zeros(cols, device=W.device) if coverage is None else coverage.float()
    Q = torch.zeros_like(W)
    perm = torch.empty(cols, dtype=torch.long, device=W.device)
    scale_all, zero_all = grid.columns(all_cols)
    sentinel = float("-inf") if descending else float("inf")
    for step in range(cols):
        top = cov.masked_fill(~remaining, float("-inf")).max()
        candidates = remaining & (cov == top)
        d = torch.diagonal(hinv).clamp_min(torch.finfo(hinv.dtype).tiny)
        score = importance(W, d, grid, all_cols).masked_fill(~candidates, sentinel)
        p = int(score.argmax() if descending else score.argmin())
        q = quantize(W[:, p:p + 1], scale_all[:, p:p + 1], zero_all[:, p:p + 1], grid.maxq)
        row = hinv[p].clone()
        err = (W[:, p:p + 1] - q) / row[p]
        row[~remaining] = 0.0  # quantized columns are frozen (their H⁻¹ row is ~0 already)
        W -= err * row.unsqueeze(0)
        hinv -= torch.outer(hinv[:, p], row) / row[p]
        Q[:, p:p + 1] = q
        remaining[p] = False
        perm[step] = p
    return Q, perm
