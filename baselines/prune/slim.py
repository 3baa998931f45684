"""Network slimming (Liu et al., ICCV 2017): L1 on BN γ while training, one global threshold, structured removal.

Before the prune the training loss gets λ·Σ|γ| over every BatchNorm (``extra_loss``; λ = 1e-4 as for
VGG in the paper, ``--l1``).  At the prune point the channels with the smallest |γ| are removed with
torch-pruning's dependency graph, so residual additions and concatenations keep matching channels:
coupled channels form one group ranked by the mean |γ| of its BNs (``BNScaleImportance`` with no
normaliser, so the ranking is raw |γ| as in the paper), and one global ranking removes
``--ratio`` of all groups' channels.  The pruned model is physically smaller; fine-tuning and the
deploy model use it as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from baselines.prune.pipeline import PipelineOptions, PruningPipeline, classifier, example_input
from baselines.prune.structure import apply_shape_edits, describe, shape_edits


@dataclass(frozen=True)
class SlimConfig(PipelineOptions):
    l1: float = 1e-4  # λ of the L1 penalty on BN γ before the prune

    def __post_init__(self):
        super().__post_init__()
        if self.l1 < 0:
            raise AdaGrowError(f"--l1 must be 0 or more (got {self.l1})")


def batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]


def bn_channels(model: nn.Module) -> int:
    return sum(bn.num_features for bn in batchnorms(model))


def slim(model: nn.Module, example: torch.Tensor, ratio: float) -> nn.Module:
    """Remove ``ratio`` of the channels (globally, smallest |γ| first) in place; return the model."""
    import torch_pruning as tp

    if not batchnorms(model):
        raise AdaGrowError("slimming ranks channels by BatchNorm γ, and this model has no BatchNorm layer "
                           "(use --method magnitude or wanda)")
    head = classifier(model)
    pruner = tp.pruner.BasePruner(model, example, importance=tp.importance.BNScaleImportance(normalizer=None),
                                  global_pruning=True, pruning_ratio=ratio, ignored_layers=[head] if head else [])
    pruner.step()
    return model


class SlimPruning(PruningPipeline):
    name = "slim"
    physical = True
    keeps_optimizer = False  # the pruned tensors are new parameters; fine-tuning starts a fresh optimizer state

    def __init__(self, cfg: SlimConfig):
        super().__init__(cfg)
        self.edits: dict[str, Any] = {}

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        if self.pruned or not self.cfg.l1:
            return None
        return self.cfg.l1 * sum(bn.weight.abs().sum() for bn in batchnorms(model))

    def prune(self, ctx: RunContext, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
        dense, channels = describe(model), bn_channels(model)
        params = sum(p.numel() for p in model.parameters())
        pruned = slim(copy.deepcopy(model), example_input(ctx), self.cfg.ratio)
        self.edits = shape_edits(dense, pruned)
        left = bn_channels(pruned)
        return pruned, {"requested_sparsity": self.cfg.ratio, "achieved_sparsity": 1 - left / channels,
                        "bn_channels_before": channels, "bn_channels_after": left,
                        "params_removed_share": 1 - sum(p.numel() for p in pruned.parameters()) / params}

    def restore(self, model: nn.Module) -> nn.Module:
        return apply_shape_edits(model, self.edits)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "edits": self.edits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.edits = state["edits"]


METHODS.register("slim", MethodEntry(SlimConfig, SlimPruning,
                                     "network slimming: L1 on BN γ, global threshold, channels physically removed"))
