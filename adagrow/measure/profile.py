"""Parameters and multiply-accumulates (MACs) of a model.

The thesis' "FLOPs" are MACs counted by thop at batch 1 (SPEC §3.2), so the column is called
``macs`` everywhere.  We count them with Torch-Pruning's ``count_ops_and_params`` (derived from
ptflops: convolutions, linears, normalisation and pooling, the same convention as thop; it pins timm
ResNet-18 at 224² to 1.82 GMACs).  Module hooks cannot see attention written as a function call, so
the matrix products inside ``F.scaled_dot_product_attention`` are added from PyTorch's own
``FlopCounterMode`` (which counts a multiply-add as two FLOPs, hence the halving).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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


def _attention_macs(model: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    flops = sum(
        n for op, n in counter.get_flop_counts().get("Global", {}).items() if "scaled_dot_product" in str(op)
    )
    return int(flops) // 2


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
        ops, _ = tp.utils.count_ops_and_params(model, x)
        return int(ops) + _attention_macs(model, x)
    finally:
        model.train(was_training)


def profile(model: nn.Module, input_size: Sequence[int] = (), example: torch.Tensor | None = None) -> dict:
    """``{"params": int, "macs": int}`` of ``model`` at ``input_size`` (C, H, W), batch 1."""
    return {"params": count_params(model), "macs": count_macs(model, input_size, example)}
