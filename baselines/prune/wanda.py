"""Activation-aware magnitude pruning, Wanda (Sun et al., ICLR 2024): score S_ij = |W_ij| · ‖X_j‖₂.

‖X_j‖₂ is the root mean square of input feature j over calibration tokens from training batches
(Wanda's ``scaler_row``); for a convolution, over the columns of its unfolded input (``nn.Unfold``,
column c·kh·kw + i·kw + j, which matches ``weight.flatten(1)``).  The paper compares weights within
each output row (``--scope row``, the default here); ``layer``, ``global`` and ``2:4`` rank as for
magnitude pruning.  Simplification: all layers are scored in one calibration pass of the dense model,
not block by block on the outputs of already-pruned blocks as the LLM code does.  Grouped (e.g.
depthwise) convolutions are left dense and named in the record (``left_dense_grouped``): each of their
output rows sees only its own group's input channels, which the unfolded columns do not follow.
On text (token ids, 0 = padding) the norms are over real tokens only (``activation_norms``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from baselines.prune.masked import MaskedPipeline, MaskOptions

# token id 0 is padding, as every text model here masks it (GrowableBERT.embed; adagrow.data.tokenizer.PAD_ID,
# not imported: that module loads the tokenizers library, which pruning needs nothing of)
PAD_ID = 0


@dataclass(frozen=True)
class WandaConfig(MaskOptions):
    scope: str = "row"
    calibration_batches: int = 8  # training batches whose activations give ‖X‖

    def __post_init__(self):
        super().__post_init__()
        if self.calibration_batches < 1:
            raise AdaGrowError(f"--calibration-batches must be at least 1 (got {self.calibration_batches})")


def input_columns(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as (tokens, input columns of ``weight.flatten(1)``)."""
    if isinstance(layer, nn.Conv2d):
        cols = F.unfold(x, layer.kernel_size, dilation=layer.dilation, padding=layer.padding, stride=layer.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])  # all input channels: grouped convs are not scored
    return x.reshape(-1, x.shape[-1])


def real_tokens(x: torch.Tensor) -> torch.Tensor | None:
    """For a batch of token ids ``[B, L]``: which positions are real tokens (not padding), flattened to
    ``B·L``; None for any other input (images: every row of a layer's input counts)."""
    if x.dtype in (torch.int32, torch.int64) and x.dim() == 2:
        return (x != PAD_ID).reshape(-1)
    return None


@torch.no_grad()
def activation_norms(model: nn.Module, layers: dict[str, nn.Module], batches) -> dict[str, torch.Tensor]:
    """‖X_j‖₂ per input column of each layer (root of the mean of squares over all calibration tokens).

    Text batches are padded to their longest sentence: a padded position's activations never reach the
    output (it is masked out as an attention key and the head reads the first token), so they are not
    calibration tokens.  Wanda's calibration windows are unpadded (C4 segments), i.e. every token it
    counts is a real one; here a layer's input rows at padded positions (``[B, L, ·]`` laid out as the
    batch's ids) are left out, and rows that are not per position (the head's ``[B, ·]``) all count."""
    sums = {name: None for name in layers}
    counts = dict.fromkeys(layers, 0)
    current: dict[str, torch.Tensor | None] = {"keep": None}  # the real-token mask of the batch being run

    def hook(name):
        def record(module, inputs, output):
            cols = input_columns(module, inputs[0].float())
            keep = current["keep"]
            if keep is not None and cols.shape[0] == keep.numel():
                cols = cols[keep.to(cols.device)]
            sq = cols.pow(2).sum(0)
            sums[name] = sq if sums[name] is None else sums[name] + sq
            counts[name] += cols.shape[0]
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            current["keep"] = real_tokens(x)
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: (sums[name] / max(counts[name], 1)).sqrt() for name in layers if sums[name] is not None}


def wanda_scores(layers: dict[str, nn.Module], norms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """|W| · ‖X_j‖ broadcast over the output rows, in the weight's shape."""
    out = {}
    for name, m in layers.items():
        w = m.weight.detach()
        if name not in norms or grouped(m):  # layers_to_prune leaves grouped convolutions out
            raise AdaGrowError(f"wanda: layer {name} saw no calibration input or is a grouped convolution")
        out[name] = (w.abs().flatten(1) * norms[name].to(w.device)).view_as(w)
    return out


def grouped(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups != 1


class WandaPruning(MaskedPipeline):
    name = "wanda"

    def layers_to_prune(self, model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, list[str]]]:
        layers, left_dense = super().layers_to_prune(model)
        skipped = [n for n, m in layers.items() if grouped(m)]
        return {n: m for n, m in layers.items() if n not in skipped}, {**left_dense, "left_dense_grouped": skipped}

    def scores(self, ctx: RunContext, model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        if ctx.train_batches is None:
            raise AdaGrowError("wanda needs training batches for calibration")
        stream = ctx.train_batches()
        batches = [next(stream)[0] for _ in range(self.cfg.calibration_batches)]
        return wanda_scores(layers, activation_norms(model, layers, batches))


METHODS.register("wanda", MethodEntry(WandaConfig, WandaPruning,
                                      "activation-aware magnitude pruning (Wanda): |W|·‖X‖, per row, layer or 2:4"))
