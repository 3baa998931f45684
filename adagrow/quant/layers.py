"""The wrapper a quantized Conv2d/Linear runs as (simulated quantization, exportable as Q/DQ).

The weights of a quantized layer already hold dequantized grid values (what the solver returned).
The wrapper adds what the precision means at run time:

* ``int8`` (W8A8): the input is fake-quantized per tensor (symmetric, scale from the calibration
  maximum) and the weight per output channel (symmetric) with the solver's own scales, both with
  ``torch.fake_quantize_*_affine`` so that ONNX export emits QuantizeLinear/DequantizeLinear pairs,
  the explicit-quantization graph TensorRT builds INT8 engines from.  The weight is on exactly that
  grid already, so the weight Q/DQ returns it bit for bit (:meth:`QuantLayer.effective_weight`).
  Weights solved on grids with column groups (``group_size``) have no per-channel scale: they run
  as stored, still exactly the solver's values, and cannot be exported as INT8 Q/DQ.
* ``a16`` (W4A16): the input is rounded to float16, as a 16-bit activation would be.

Computation itself stays in the model's dtype: on plain PyTorch this is a simulation, and records
say so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class QuantLayer(nn.Module):
    """Runs ``inner`` (a Conv2d or Linear) with quantized input and, for INT8, Q/DQ weights."""

    def __init__(self, inner: nn.Module, mode: str, act_scale: float | None = None,
                 weight_scale: torch.Tensor | None = None) -> None:
        super().__init__()
        if mode not in ("int8", "a16"):
            raise ValueError(f"unknown QuantLayer mode {mode!r}")
        self.inner = inner
        self.mode = mode
        if mode == "int8":
            self.act_scale = float(act_scale)
            per_channel = weight_scale is not None
            self.register_buffer("weight_scale", weight_scale.detach().float().flatten().clone() if per_channel
                                 else None)
            self.register_buffer("weight_zero", torch.zeros(weight_scale.numel(), dtype=torch.int32,
                                                            device=weight_scale.device) if per_channel else None)

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward pass multiplies with (INT8: after the per-channel Q/DQ, if any)."""
        if self.mode == "int8" and self.weight_scale is not None:
            return torch.fake_quantize_per_channel_affine(self.inner.weight, self.weight_scale, self.weight_zero,
                                                          0, -128, 127)
        return self.inner.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "a16":
            return self.inner(x.to(torch.float16).to(x.dtype))
        x = torch.fake_quantize_per_tensor_affine(x, self.act_scale, 0, -128, 127)
        w = self.effective_weight()
        if isinstance(self.inner, nn.Conv2d):
            return self.inner._conv_forward(x, w, self.inner.bias)
        return F.linear(x, w, self.inner.bias)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
