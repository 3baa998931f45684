"""Parameter-magnitude pruning: mask the weights of smallest |W| (global, per layer, per row, or N:M).

Global ranking is what ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured`` does
(``round(ratio · n)`` weights); per layer and per row follow Wanda's ``prune_magnitude`` / ``compute_mask``
to their conventions at ties (``masks.layer_mask``, ``masks.row_mask``); N:M (2:4) keeps the N largest of
every M consecutive input weights.  The classifier stays dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.methods import METHODS, MethodEntry
from baselines.prune.masked import MaskedPipeline, MaskOptions


@dataclass(frozen=True)
class MagnitudeConfig(MaskOptions):
    pass


class MagnitudePruning(MaskedPipeline):
    name = "magnitude"

    def scores(self, ctx: RunContext, model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        return {name: m.weight.detach().abs() for name, m in layers.items()}


METHODS.register("magnitude", MethodEntry(MagnitudeConfig, MagnitudePruning,
                                          "parameter-magnitude pruning (unstructured, per row, or 2:4), masked fine-tuning"))
