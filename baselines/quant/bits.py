"""From mixture components to bit-widths and quantized weights: the budget, the codebook, the size.

* :func:`bits_for`: K active components need ⌈log₂ K⌉ bits (at least 1).
* :func:`fit_budget`: lower bit-widths, one bit at a time, where it costs the least relative
  quantization error, until the weight-count-weighted average is within the requested budget.
* :func:`lloyd`, :func:`codebook`: 1-D k-means, to re-cluster a layer to 2^b levels when the budget took bits
  away (and the b-bit codebooks of the baselines BAMC is compared with).
* :func:`snap`: every weight to its nearest level (the codebook quantization BAMC deploys).
* :func:`size_bytes`: bits of every quantized weight, its codebook or grid, and the float32 rest.
"""

from __future__ import annotations

import math

import torch

from adagrow.errors import AdaGrowError


def bits_for(components: int) -> int:
    """Bits that index ``components`` levels (1 bit for a single level: a layer still needs its sign bit
    of storage in any real format, and 0-bit layers are not a thing deployment kernels know)."""
    return max(1, math.ceil(math.log2(max(components, 1))))


def lloyd(x: torch.Tensor, init: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """1-D k-means of ``x`` from the levels ``init``; returns the levels, sorted.  A level that loses
    all its points stays where it was."""
    x = x.detach().double().flatten()
    levels = torch.sort(init.detach().double().flatten()).values
    for _ in range(iters):
        idx = nearest(x, levels)
        sums = torch.zeros_like(levels).index_add_(0, idx, x)
        counts = torch.zeros_like(levels).index_add_(0, idx, torch.ones_like(x))
        new = torch.where(counts > 0, sums / counts.clamp_min(1), levels)
        new = torch.sort(new).values
        if torch.allclose(new, levels):
            break
        levels = new
    return levels


def nearest(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of the sorted ``levels`` for every element of ``x``."""
    if levels.numel() == 1:
        return torch.zeros(x.numel(), dtype=torch.long, device=x.device)
    mids = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(x.flatten().to(mids.dtype), mids)


def snap(weight: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``weight`` with every value replaced by its nearest level (same shape and dtype)."""
    levels = torch.sort(levels.to(weight.device, torch.float64)).values
    return levels[nearest(weight.detach().double(), levels)].reshape(weight.shape).to(weight.dtype)


def relative_error(weight: torch.Tensor, quantized: torch.Tensor) -> float:
    """‖W − Q‖² / ‖W − mean W‖²: the quantization error as a share of the layer's spread."""
    w = weight.detach().double()
    return float((w - quantized.detach().double()).pow(2).sum() / (w - w.mean()).pow(2).sum().clamp_min(1e-30))


def fit_budget(bits: dict[str, int], counts: dict[str, int], samples: dict[str, torch.Tensor],
               levels: dict[str, torch.Tensor], budget: float | None) -> dict[str, torch.Tensor]:
    """Lower ``bits`` in place until Σ n_l b_l / Σ n_l ≤ ``budget``; return each layer's levels (at most
    2^b_l of them: the mixture's own while the layer keeps its inferred width, else re-clustered).

    Greedy: each step takes one bit from the layer whose relative quantization error (on its weight
    sample) rises least per bit saved — the layer that needs its levels least.
    """
    out = {name: _levels_at(samples[name], levels[name], b) for name, b in bits.items()}
    if budget is None:
        return out
    if budget < 1:
        raise AdaGrowError(f"an average of {budget} bits is below the 1 bit a layer needs")
    total = sum(counts.values())
    while sum(bits[n] * counts[n] for n in bits) / total > budget + 1e-9:
        costs = {}
        for name, b in bits.items():
            if b > 1:
                lower = _levels_at(samples[name], out[name], b - 1)
                x = samples[name]
                rise = relative_error(x, snap(x, lower)) - relative_error(x, snap(x, out[name]))
                costs[name] = (rise, lower)
        name = min(costs, key=lambda n: costs[n][0])
        bits[name] -= 1
        out[name] = costs[name][1]
    return out


def _levels_at(sample: torch.Tensor, levels: torch.Tensor, b: int) -> torch.Tensor:
    """At most 2^b levels: ``levels`` if they fit, else the sample's b-bit :func:`codebook`."""
    if levels.numel() <= 2**b:
        return torch.sort(levels.double()).values
    return codebook(sample, b)


def codebook(sample: torch.Tensor, b: int) -> torch.Tensor:
    """The 2^b levels of a b-bit codebook of ``sample``: k-means from its 2^b quantiles (a start that cannot
    leave a region of the weights without a level, as the heaviest means could)."""
    k = 2**b
    return lloyd(sample, torch.quantile(sample.double(), torch.linspace(0.5 / k, 1 - 0.5 / k, k, dtype=torch.float64)))


def size_bytes(weight_bits: dict[str, tuple[int, int]], overhead_bytes: int, other_params: int) -> int:
    """Model size: ``{layer: (n_weights, bits)}`` packed, plus codebooks / grids (``overhead_bytes``), plus
    every other parameter (biases, BN, layers left in float) at 4 bytes."""
    packed = sum(math.ceil(n * b / 8) for n, b in weight_bits.values())
    return packed + overhead_bytes + 4 * other_params
