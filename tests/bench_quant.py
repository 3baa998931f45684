"""Benchmarks of the layer-level solvers, and the measurement that picks the within-group sort
direction of the thesis order (``DEFAULT_DESCENDING``).

Run: ``pytest tests/bench_quant.py --benchmark-only -s``.  The direction measurement prints the
mean relative output error ‖WX − ŴX‖²/‖WX‖² of ``adagrow`` and ``adagrow-rerank`` with
descending and ascending importance, divided by natural-order ``obs``'s error on the same layer, over fused 5×5 convs (branches {5×5, 3×3, 1×1, 1×3, 3×1},
plus an identity branch where channels match) fed white, rectified and spatially smooth inputs,
and over Linear layers with correlated inputs, at 4 and 3 bits.
"""

from __future__ import annotations

import statistics

import pytest
import torch
import torch.nn.functional as F

from adagrow.quant import METHODS, coverage_map, quantize_weight
from adagrow.quant.hessian import HessianAccumulator, output_error

BRANCHES = [(5, 5), (3, 3), (1, 1), (1, 3), (3, 1)]


def fused_case(seed: int, inputs: str, channels: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(channels, channels, 5, 5)
    for bh, bw in BRANCHES:
        t, l = (5 - bh) // 2, (5 - bw) // 2
        w[:, :, t:t + bh, l:l + bw] += torch.randn(channels, channels, bh, bw, generator=g) * (2 / (channels * bh * bw)) ** 0.5
    w[torch.arange(channels), torch.arange(channels), 2, 2] += 1.0  # identity branch
    x = torch.randn(32, channels, 12, 12, generator=g)
    if inputs in ("smooth", "smooth-relu"):
        x = F.avg_pool2d(x, 3, 1, 1)
    if inputs.endswith("relu"):
        x = F.relu(x + 0.3)
    conv = torch.nn.Conv2d(channels, channels, 5, padding=2)
    acc = HessianAccumulator(conv)
    acc.add(x)
    return w, acc.hessian[0], coverage_map(BRANCHES + [(1, 1)], (5, 5))


def linear_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, None]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.eye(128) + 0.3 * torch.randn(128, 128, generator=g)) @ torch.randn(128, 1024, generator=g)
    return torch.randn(64, 128, generator=g), 2 * x @ x.t() / 1024, None


def direction_measurement(seeds: int = 4) -> dict[str, float]:
    cases = [(f"conv-{inp}", lambda s, i=inp: fused_case(s, i)) for inp in ("white", "relu", "smooth", "smooth-relu")]
    cases.append(("linear", linear_case))
    errors: dict[str, list[float]] = {}
    for _name, make in cases:
        for seed in range(seeds):
            w, h, cov = make(seed)
            for bits in (4, 3):
                base = output_error(w, quantize_weight(w, h, bits, "obs").weight, h)[1]
                for method in ("adagrow", "adagrow-rerank"):
                    for desc in (True, False):
                        q = quantize_weight(w, h, bits, method, coverage=cov, descending=desc).weight
                        key = f"{method} {'desc' if desc else 'asc'} w{bits}"
                        errors.setdefault(key, []).append(output_error(w, q, h)[1] / base)
    return {k: statistics.fmean(v) for k, v in errors.items()}


def test_sort_direction(benchmark):
    result = benchmark.pedantic(direction_measurement, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    for key, value in sorted(result.items()):
        print(f"{key:28s} {value:.5f}")


@pytest.mark.parametrize("method", METHODS)
def test_solver_speed(benchmark, method):
    w, h, _ = linear_case(0)
    w = torch.cat([w] * 4)  # 256 rows × 128 columns
    benchmark(quantize_weight, w, h, 4, method)
