"""Putting a per-layer bit allocation into a model, in one of BAMC's storage formats, and its size.

* ``means`` (BAMC's codebook format): each layer stores 2^b float32 levels and a b-bit index per weight;
  :func:`apply_codebooks` snaps every weight to the nearest of the given levels (BAMC's component means,
  or a baseline's b-bit k-means codebook, :func:`baselines.quant.bits.codebook`);
* ``rtn`` / ``obs`` / ``actorder`` / ``adagrow``: per-row asymmetric grids of 2^b values (a float32 scale
  and zero per row) by the project's layer quantizer, :func:`quantize_layers`.

BAMC and every baseline it is compared with go through these same functions, so a comparison row
differs from BAMC's only in the bits per layer (and, in the codebook format, in where the levels sit).
"""

from __future__ import annotations

import torch
from torch import nn

from adagrow.quant.coverage import column_coverage
from adagrow.quant.model import calibrate
from adagrow.quant.obs import quantize_weight
from baselines.quant import bits as B


def apply_codebooks(layers: dict[str, nn.Module], levels: dict[str, torch.Tensor]) -> int:
    """Snap each layer's weights to its levels in place; return the codebooks' bytes (float32)."""
    for name, layer in layers.items():
        layer.weight.data.copy_(B.snap(layer.weight, levels[name]))
    return sum(4 * len(levels[n]) for n in layers)


def quantize_layers(model: nn.Module, bits: dict[str, int], method: str, inputs: list[torch.Tensor]) -> int:
    """Quantize the named layers of ``model`` in place, each at its own bit-width, with the project's
    layer quantizer (``adagrow.quant.quantize_weight``: per-row asymmetric grids).  Hessian-based methods
    calibrate each layer on the model whose earlier layers are already quantized, as ``quantize_model``.
    Returns the grids' bytes (a float32 scale and zero per row)."""
    was_training = model.training
    model.eval()
    overhead = 0
    for name, b in bits.items():
        layer = model.get_submodule(name)
        weight = layer.weight.detach()
        overhead += 8 * weight.shape[0]
        if method == "rtn":
            layer.weight.data.copy_(quantize_weight(weight, None, b, "rtn").weight)
            continue
        acc, _ = calibrate(model, layer, inputs)
        if acc.hessian is None:  # never called in the forward pass: left in float
            continue
        groups = acc.hessian.shape[0]
        per_group = weight.reshape(groups, -1, *weight.shape[1:])
        coverage = column_coverage(layer) if method.startswith("adagrow") else None
        q = [quantize_weight(per_group[g], acc.hessian[g], b, method, coverage=coverage).weight for g in range(groups)]
        layer.weight.data.copy_(torch.cat(q).reshape(weight.shape))
    model.train(was_training)
    return overhead


def quantize_at(model: nn.Module, layers: dict[str, nn.Module], bits: dict[str, int], quantizer: str,
                samples: dict[str, torch.Tensor], inputs: list[torch.Tensor]) -> int:
    """A baseline's allocation ``bits`` in the ``quantizer``'s format (codebooks of the layers' samples for
    ``means``); returns the format's overhead bytes."""
    if quantizer == "means":
        return apply_codebooks(layers, {n: B.codebook(samples[n], bits[n]) for n in layers})
    return quantize_layers(model, bits, quantizer, inputs)


def sq_errors(weight: torch.Tensor, sample: torch.Tensor, quantizer: str, max_bits: int) -> dict[int, float]:
    """‖Q_b(W) − W‖² for b = 1..max_bits in the format of ``quantizer`` (HAWQ-v2's perturbation): the
    b-bit codebook's error on the sample scaled to the layer's size for ``means``, else per-row RTN grids
    (the error a Hessian-free estimate of any per-row grid quantizer gives)."""
    out = {}
    for b in range(1, max_bits + 1):
        if quantizer == "means":
            err = (B.snap(sample, B.codebook(sample, b)) - sample).pow(2).sum() * (weight.numel() / sample.numel())
        else:
            err = (quantize_weight(weight.detach(), None, b, "rtn").weight - weight.detach()).pow(2).sum()
        out[b] = float(err)
    return out
