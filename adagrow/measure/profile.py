"""Parameters and multiply-accumulates (MACs) of a model.

The thesis' "FLOPs" are MACs counted by thop at batch 1 (SPEC §3.2), so the column is called
``macs`` everywhere.  Two counters add up, each seeing what the other cannot:

* **Module hooks**: Torch-Pruning's ``count_ops_and_params`` (derived from ptflops: convolutions,
  linears, normalisation, pooling, ``nn.MultiheadAttention`` and timm attention; the same
  convention as thop; it pins timm ResNet-18 at 224² to 1.82 GMACs).
* **Function calls**: matrix products a model computes by calling a function instead of a module
  those hooks know: attention (``F.scaled_dot_product_attention``: QKᵀ and AV; ``matmul``/``@``/
  ``bmm`` in eager attention), the re-parameterisable unit's stacked branch convolutions
  (``F.conv2d``) and, on its batched path, batch norm (``F.batch_norm``, counted like the BN modules and
  only inside a unit: elsewhere, e.g. timm's ``BatchNormAct2d``, the module counter's convention stands),
  a quantized layer's ``F.linear``.  They are counted from the operands' shapes at
  the torch-function level, *above* kernel dispatch, so the count is the same on every device and
  torch version and whichever attention kernel (flash, memory-efficient, math) or ``transformers``
  attention implementation runs.  Calls made inside a module the hooks already count are skipped.

So an unfused model counts what its forward pass really computes (every branch; the training
cost).  Its MACs are usually above those of its fused deploy model, but not always: a unit fuses into
one dense square K×K kernel, K the longest side of any of its branches, and when that square has more
taps than the unit computes unfused, the fused unit costs more.  The two ways this happens:

* a k×k **pooling** branch is what makes K larger than every conv branch (pooling counts one op
  per element, as ptflops / thop count it; fused, it is a dense k×k kernel): a 3×3 unit with a 5×5
  pool branch, 10.5K vs 25.9K MACs at 4 channels, 8×8;
* a **non-square** branch: a 3×3 unit with one 3×5 branch runs 9 + 15 = 24 taps per output unfused
  and 5×5 = 25 fused (25.6K vs 25.9K MACs at 4 channels, 8×8; 25.2M vs 26.2M in a grown model).
  Batched branch compute (``engine/speed.py``) pads the branches to their common rectangle (3×5
  here: 30 taps), which is then again above the fused square.

tests/test_measure.py pins both by hand-counted MACs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm}
_CONVS = {F.conv1d, F.conv2d, F.conv3d}


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _example(model: nn.Module, input_size: Sequence[int], example: torch.Tensor | None) -> torch.Tensor:
    if example is not None:
        return example
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    return torch.randn(1, *input_size, device=device)


def _arg(args: tuple, kwargs: dict, index: int, name: str):
    return args[index] if len(args) > index else kwargs.get(name)


def call_macs(func, args: tuple, kwargs: dict, out) -> int:
    """MACs of one function call from its operands' shapes (0 for anything but a matrix product).

    Bias is counted as the module hooks count it (conv: one add per output, linear: one per
    output feature), so a layer counts the same whether it runs as a module or as a call.
    """
    if func is F.scaled_dot_product_attention:
        q, k, v = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
        rows = out.numel() // out.shape[-1]  # batch · heads · query length
        return rows * k.shape[-2] * (q.shape[-1] + v.shape[-1])  # QKᵀ and AV
    if func in _MATMULS:
        return out.numel() * args[0].shape[-1]  # every output element is a dot product over the inner dim
    if func in _CONVS:
        weight, bias = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
        return out.numel() * weight[0].numel() + (out.numel() if bias is not None else 0)
    if func is F.linear:
        weight, bias = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
        return out.numel() * weight.shape[-1] + (out.shape[-1] if bias is not None else 0)
    if func is F.batch_norm:  # scale and shift, as the module counter counts an affine BN
        return out.numel() * (2 if _arg(args, kwargs, 3, "weight") is not None else 1)
    return 0


class CallCounter(TorchFunctionMode):
    """Within ``with CallCounter(model):``, sums :func:`call_macs` of the calls ``model`` makes
    outside the modules Torch-Pruning's hooks count (those would be counted twice)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        from torch_pruning.utils.op_counter import is_supported_instance

        from adagrow.models.reparam import RepUnit

        self.macs = 0
        self._inside = 0
        self._in_units = 0
        self._hooked = [m for m in model.modules() if is_supported_instance(m)]
        self._units = [m for m in model.modules() if isinstance(m, RepUnit)]
        self._handles: list = []

    def __enter__(self):
        for m in self._hooked:
            self._handles.append(m.register_forward_pre_hook(self._enter_module))
            self._handles.append(m.register_forward_hook(self._leave_module))
        for m in self._units:
            self._handles.append(m.register_forward_pre_hook(self._enter_unit))
            self._handles.append(m.register_forward_hook(self._leave_unit))
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return super().__exit__(*exc)

    def _enter_module(self, *_) -> None:
        self._inside += 1

    def _leave_module(self, *_) -> None:
        self._inside -= 1

    def _enter_unit(self, *_) -> None:
        self._in_units += 1

    def _leave_unit(self, *_) -> None:
        self._in_units -= 1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self._inside and (func is not F.batch_norm or self._in_units):
            self.macs += call_macs(func, args, kwargs, out)
        return out


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Sequence[int] = (), example: torch.Tensor | None = None) -> int:
    """MACs of one eval-mode forward pass at batch 1.

    ``input_size`` is (C, H, W) for images; for token models pass ``example`` (a batch-1 tensor of
    token ids) instead.
    """
    import torch_pruning as tp  # imported here: it is slow to import and only needed for counting

    was_training = model.training
    model.eval()
    try:
        x = _example(model, input_size, example)
        ops, _ = tp.utils.count_ops_and_params(model, x)  # per sample
        with CallCounter(model) as calls:
            model(x)
        return int(ops) + calls.macs // x.shape[0]
    finally:
        model.train(was_training)


def profile(model: nn.Module, input_size: Sequence[int] = (), example: torch.Tensor | None = None) -> dict:
    """``{"params": int, "macs": int}`` of ``model`` at ``input_size`` (C, H, W), batch 1."""
    return {"params": count_params(model), "macs": count_macs(model, input_size, example)}
