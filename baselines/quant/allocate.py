"""Per-layer bit allocations BAMC is compared with, each at a given average width (weighted by weight count).

* :func:`uniform`: every layer at ⌊budget⌋ bits (the budget itself when it is a whole number);
* :func:`random_allocation`: from ``max_bits`` everywhere, one bit at a time off a layer drawn at random
  (seeded), until the average is within the budget — a random point of the same budget;
* :func:`hessian_allocation`: HAWQ-v2 (Dong et al., NeurIPS 2020): a layer's sensitivity at b bits is
  Ω_l(b) = (Tr H_l / n_l)·‖Q_b(W_l) − W_l‖², the mean Hessian trace (:mod:`baselines.quant.hutchinson`)
  times the squared perturbation of quantizing it; the allocation minimises Σ_l Ω_l(b_l) under the budget.
  HAWQ-v2 reads the minimum off the Pareto frontier of (size, ΣΩ); we reach it greedily, from ``max_bits``
  everywhere taking each time the bit whose removal raises ΣΩ least per weight-bit saved.

Every allocation ends with Σ n_l b_l / Σ n_l ≤ budget, each b_l in 1..max_bits — except
:func:`uniform_above`, every layer at ⌈budget⌉ bits: whole bits cannot meet a fractional budget uniformly, so
BAMC's uniform comparison is the bracket of the two uniform widths either side of its average (fewer bits and
more), not one row at "the same bits" that in fact has fewer.
"""

from __future__ import annotations

import math

import torch

from adagrow.errors import AdaGrowError

ALLOCATIONS = ("uniform", "random", "hessian")  # at the budget or below
COMPARISONS = (*ALLOCATIONS, "uniform-above")  # what a BAMC run measures on its model; uniform-above exceeds it


def average(bits: dict[str, int], counts: dict[str, int]) -> float:
    return sum(bits[n] * counts[n] for n in bits) / sum(counts[n] for n in bits)


def _check(budget: float, max_bits: int) -> None:
    if not 1 <= budget:
        raise AdaGrowError(f"an average of {budget} bits is below the 1 bit a layer needs")
    if max_bits < 1:
        raise AdaGrowError(f"max_bits must be at least 1 (got {max_bits})")


def uniform(counts: dict[str, int], budget: float, max_bits: int) -> dict[str, int]:
    _check(budget, max_bits)
    return dict.fromkeys(counts, min(max_bits, math.floor(budget + 1e-9)))


def uniform_above(counts: dict[str, int], budget: float, max_bits: int) -> dict[str, int]:
    _check(budget, max_bits)
    return dict.fromkeys(counts, min(max_bits, math.ceil(budget - 1e-9)))


def random_allocation(counts: dict[str, int], budget: float, max_bits: int, seed: int) -> dict[str, int]:
    _check(budget, max_bits)
    g = torch.Generator().manual_seed(seed)
    bits = dict.fromkeys(counts, max_bits)
    while average(bits, counts) > budget + 1e-9:
        lowerable = [n for n in bits if bits[n] > 1]
        bits[lowerable[int(torch.randint(len(lowerable), (1,), generator=g))]] -= 1
    return bits


def hessian_allocation(counts: dict[str, int], traces: dict[str, float], sq_errors: dict[str, dict[int, float]],
                       budget: float, max_bits: int) -> dict[str, int]:
    """``sq_errors[layer][b]``: ‖Q_b(W) − W‖² of the layer quantized at b bits (1..max_bits)."""
    _check(budget, max_bits)

    def omega(n: str, b: int) -> float:
        return max(traces[n], 0.0) / counts[n] * sq_errors[n][b]  # a negative estimate (a saddle): insensitive

    bits = dict.fromkeys(counts, max_bits)
    while average(bits, counts) > budget + 1e-9:
        rise = {n: (omega(n, b - 1) - omega(n, b)) / counts[n] for n, b in bits.items() if b > 1}
        bits[min(rise, key=rise.get)] -= 1
    return bits
