"""Layer-level quantization: grids, RTN, the GPTQ-style OBS solver and its orderings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adagrow.errors import AdaGrowError
from adagrow.quant import METHODS, quantize_weight
from adagrow.quant.coverage import coverage_map
from adagrow.quant.grid import fit_grid, quantize_rtn
from adagrow.quant.hessian import HessianAccumulator, output_error
from adagrow.quant.order import importance

BRANCHES = [(5, 5), (3, 3), (1, 1), (1, 3), (3, 1)]


def correlated_problem(seed: int, rows: int = 24, cols: int = 64, n: int = 512):
    """A random layer and the Hessian of correlated calibration inputs X (returned too)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(cols) + 0.4 * torch.randn(cols, cols, generator=g)
    X = mix @ torch.randn(cols, n, generator=g)
    W = torch.randn(rows, cols, generator=g)
    return W, 2 * X @ X.t() / n, X


def on_grid(q: torch.Tensor, w: torch.Tensor, bits: int, sym: bool, group_size: int = -1) -> bool:
    """Every value of ``q`` is ``scale · (integer code − zero)`` with the grid fitted to ``w``."""
    grid = fit_grid(w, bits, sym, group_size)
    scale, zero = grid.columns(torch.arange(w.shape[1]))
    code = q / scale + zero
    return bool(torch.allclose(code, code.round(), atol=1e-3)
                and code.round().min() >= 0 and code.round().max() <= grid.maxq)


def test_rtn_matches_hand_computation():
    w = torch.tensor([[-1.0, 0.4, 2.0],    # 2-bit asym: scale (2 - -1)/3 = 1, zero 1 -> -1, 0, 2
                      [0.3, 1.0, 1.5]])    # min clamped to 0: scale 0.5, zero 0 -> 0.5, 1.0, 1.5
    assert torch.allclose(quantize_rtn(w, bits=2, sym=False),
                          torch.tensor([[-1.0, 0.0, 2.0], [0.5, 1.0, 1.5]]))
    # 4-bit symmetric: scale = 2·0.7/15, zero 8; -7.5 rounds (half to even) to -8.
    s = 1.4 / 15
    assert torch.allclose(quantize_rtn(torch.tensor([[-0.7, 0.1, 0.35]]), bits=4, sym=True),
                          torch.tensor([[-8 * s, 1 * s, 4 * s]]))
    # Groups of 2 columns: the small group gets its own scale and survives; one row scale loses it.
    w = torch.tensor([[0.0, 1.0, 0.0, 10.0]])
    assert torch.allclose(quantize_rtn(w, 2, group_size=2), w)
    assert torch.allclose(quantize_rtn(w, 2), torch.tensor([[0.0, 0.0, 0.0, 10.0]]))


@pytest.mark.parametrize("bits,sym,group", [(8, True, -1), (4, False, -1), (4, False, 16), (4, True, 16)])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_lands_on_the_grid(bits, sym, group, method):
    W, H, _ = correlated_problem(0)
    q, perm, _ = quantize_weight(W, H, bits, method, group_size=group, sym=sym)
    assert q.shape == W.shape and torch.isfinite(q).all()
    assert torch.equal(torch.sort(perm).values, torch.arange(W.shape[1]))
    if method == "obs" and group > 0:
        return  # natural order refits group grids on the updated weight (GPTQ default)
    assert on_grid(q, W, bits, sym, group)


def test_int8_symmetric_codes_are_signed_int8_with_zero_point_0():
    w = torch.randn(16, 40)
    q = quantize_rtn(w, 8, sym=True)
    scale = fit_grid(w, 8, True).scale
    signed = q / scale
    assert torch.allclose(signed, signed.round(), atol=1e-4)
    assert signed.round().min() >= -128 and signed.round().max() <= 127


@pytest.mark.parametrize("seed", range(4))
def test_gptq_residual_is_per_column_rounding_error(seed):
    """What the maths guarantees for OBS/GPTQ (it is Babai's nearest-plane algorithm).

    With Hd = damped H and Hd⁻¹ = UᵀU (U upper, in quantization order), the solver's result obeys
    Ŵ − W = −E·U, so ‖(Ŵ − W)X‖² ∝ Σ_k E_k² where E_k·U_kk is the rounding error of column k at the
    moment it was quantized: at most half a grid step when nothing clips.  An extra column that no
    other input correlates with holds ±10 in every row, so the grid is wide and nothing clips.
    """
    W, H, _ = correlated_problem(seed, rows=8, cols=33)
    W[:, -1] = 10.0
    H[-1, :] = 0.0
    H[:, -1] = 0.0
    H[-1, -1] = 1.0
    q, perm, _ = quantize_weight(W, H, 4, "actorder", sym=True, damp=0.01)
    Hd = H.double() + 0.01 * torch.diagonal(H).double().mean() * torch.eye(33, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(Hd))[perm][:, perm], upper=True)
    E = -torch.linalg.solve_triangular(U, (q - W).double()[:, perm], upper=True, left=False)
    rounding = (E * torch.diagonal(U)).abs()
    step = fit_grid(W, 4, True).scale.double()
    assert (rounding <= step / 2 + 1e-5).all()


@pytest.mark.parametrize("seed", range(4))
def test_obs_beats_rtn_on_the_calibration_inputs(seed):
    """Not a theorem per instance (see the test above), but with correlated inputs compensation
    removes most of the error; measured on the very X that defines H."""
    W, H, X = correlated_problem(seed)
    rtn = quantize_weight(W, H, 4, "rtn").weight
    err_rtn = ((W - rtn) @ X).pow(2).sum()
    for method in ("obs", "actorder", "adagrow", "adagrow-rerank"):
        q = quantize_weight(W, H, 4, method).weight
        assert ((W - q) @ X).pow(2).sum() < 0.8 * err_rtn, method


def test_explicit_order_is_undone_exactly():
    W, H, _ = correlated_problem(1)
    perm = torch.randperm(W.shape[1], generator=torch.Generator().manual_seed(3))
    q, used, _ = quantize_weight(W, H, 4, "obs", order=perm)
    assert torch.equal(used, perm)
    q_perm = quantize_weight(W[:, perm], H[perm][:, perm], 4, "obs").weight
    assert torch.allclose(q[:, perm], q_perm, atol=1e-5)


def test_rerank_is_obs_in_the_order_it_chose():
    """Two independent solvers (blocked Cholesky vs full H⁻¹ downdates) agree."""
    W, H, _ = correlated_problem(2)
    cov = torch.randint(1, 4, (W.shape[1],), generator=torch.Generator().manual_seed(0))
    q, perm, _ = quantize_weight(W, H, 4, "adagrow-rerank", coverage=cov)
    assert (cov[perm][1:] <= cov[perm][:-1]).all()
    q_ref = quantize_weight(W, H, 4, "obs", order=perm, block_size=7).weight
    assert torch.allclose(q, q_ref, atol=1e-4)


@pytest.mark.parametrize("descending", [True, False])
def test_adagrow_order_is_coverage_then_importance(descending):
    W, H, _ = correlated_problem(4)
    cov = torch.randint(1, 4, (W.shape[1],), generator=torch.Generator().manual_seed(1))
    perm = quantize_weight(W, H, 4, "adagrow", coverage=cov, descending=descending).perm
    assert (cov[perm][1:] <= cov[perm][:-1]).all()
    Hd = H.double() + 0.01 * torch.diagonal(H).double().mean() * torch.eye(H.shape[0], dtype=torch.float64)
    score = importance(W, torch.diagonal(torch.linalg.inv(Hd)).float(), fit_grid(W, 4, False))
    for c in cov.unique():
        s = score[perm[cov[perm] == c]]
        assert ((s[1:] <= s[:-1] + 1e-4) if descending else (s[1:] >= s[:-1] - 1e-4)).all()


def test_independent_inputs_make_every_order_equal():
    """With a diagonal H no column can compensate another: every OBS order is RTN, un-permuted."""
    W = torch.randn(8, 50)
    H = torch.diag(torch.rand(50) + 0.1)
    rtn = quantize_weight(W, None, 4, "rtn").weight
    for method in ("obs", "actorder", "adagrow", "adagrow-rerank"):
        assert torch.allclose(quantize_weight(W, H, 4, method).weight, rtn, atol=1e-5), method


def test_dead_columns_are_zero_and_finite():
    W, H, _ = correlated_problem(5, cols=20)
    H[3, :] = 0.0
    H[:, 3] = 0.0
    q = quantize_weight(W, H, 4, "adagrow").weight
    assert torch.isfinite(q).all() and (q[:, 3] == 0).all()


def fused_conv(seed: int, channels: int = 4) -> tuple[torch.nn.Conv2d, torch.Tensor]:
    """A 5×5 conv made by summing centred branches {5×5, 3×3, 1×1, 1×3, 3×1}, plus calibration input."""
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(channels, 8, 5, padding=2)
    w = torch.zeros_like(conv.weight)
    for bh, bw in BRANCHES:
        t, l = (5 - bh) // 2, (5 - bw) // 2
        w[:, :, t:t + bh, l:l + bw] += 0.3 * torch.randn(8, channels, bh, bw, generator=g)
    conv.weight.data = w
    conv.branch_kernels = list(BRANCHES)
    x = F.avg_pool2d(torch.randn(16, channels, 12, 12, generator=g), 3, 1, 1)
    return conv, x


def test_conv_hessian_gives_the_true_output_error():
    """Unfold column order matches weight.flatten(1): H-based error equals the conv's real error."""
    conv, x = fused_conv(0)
    acc = HessianAccumulator(conv)
    acc.add(x[:10])
    acc.add(x[10:])
    q = quantize_weight(conv.weight, acc.hessian[0], 3, "obs").weight
    diff = F.conv2d(x, conv.weight - q, padding=2)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    err, rel = output_error(conv.weight, q, acc.hessian)
    assert err == pytest.approx(diff.pow(2).sum().item() / n, rel=1e-3)
    assert rel == pytest.approx(diff.pow(2).sum().item() / F.conv2d(x, conv.weight, padding=2).pow(2).sum().item(),
                                rel=1e-3)


def test_fused_conv_thesis_order_compensates_and_is_undone():
    """On a fused 5×5 kernel the thesis order quantizes the centre (coverage 5) first, keeps
    nearly all of OBS's gain over RTN, and its permutation is undone exactly.

    It is *not* asserted to beat natural-order OBS: on spatially correlated inputs the natural
    (raster) order lets each column's neighbours compensate it, and measured over seeds it stays
    slightly ahead (see the module report); the bound here is what holds in every seed we ran.
    """
    conv, x = fused_conv(1)
    acc = HessianAccumulator(conv)
    acc.add(x)
    H = acc.hessian[0]
    cov = coverage_map(BRANCHES, (5, 5))
    q, perm, _ = quantize_weight(conv.weight, H, 4, "adagrow", coverage=cov)
    assert sorted(perm[:4].tolist()) == [12, 37, 62, 87]  # the centre of each of the 4 input channels
    errs = {m: output_error(conv.weight, quantize_weight(conv.weight, H, 4, m).weight, H)[1]
            for m in ("rtn", "obs")}
    ada = output_error(conv.weight, q, H)[1]
    assert ada < 0.5 * errs["rtn"] and ada < 1.25 * errs["obs"]
    q_ref = quantize_weight(conv.weight, H, 4, "obs", order=perm).weight
    assert torch.allclose(q, q_ref, atol=1e-5) and q.shape == conv.weight.shape


def test_bad_arguments_are_user_errors():
    W, H, _ = correlated_problem(0, cols=8)
    with pytest.raises(AdaGrowError):
        quantize_weight(W, H, 4, "gptq-magic")
    with pytest.raises(AdaGrowError):
        quantize_weight(W, H, 4, "adagrow", order=torch.arange(8))
    with pytest.raises(ValueError):
        quantize_weight(W, H[:4, :4], 4, "obs")
