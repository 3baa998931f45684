"""Network slimming (Liu et al., ICCV 2017): L1 on BN γ while training, one global threshold, structured removal.

Before the prune the training loss gets λ·Σ|γ| over every BatchNorm (``extra_loss``; λ = 1e-4 as for
VGG in the paper, ``--l1``).  At the prune point the channels with the smallest |γ| are removed with
torch-pruning's dependency graph, so residual additions and concatenations keep matching channels.

How channels are chosen (``choose_channels``): channels that must go together form one *group*
(a residual stage's channel lives in the stem's BN and in every block's last BN); a group channel is
ranked by the largest |γ| over its BNs (``--coupled max``, torch-pruning's ``BNScaleImportance``, no
normaliser, so the values are raw |γ| as in the paper): it goes only when *every* BN it lives in has let
it fade, which keeps the residual width unless the whole stage agrees, close to the paper's ResNets (they
never cut the residual width: a channel-selection layer prunes only inside blocks).  ``--coupled mean``
ranks by the mean instead; then the residual channels, whose blocks' last BNs timm starts at γ = 0, go
first.  One threshold over all groups' channels, lowest first, removes
``--ratio`` of the prunable BN channels, a removed group channel counting once per BN it lives in.
Each group keeps its strongest channel: a layer with no channel left would cut the network (and
torch-pruning silently refuses such a group, which is how a plain global threshold used to remove
10% instead of 50% of a trained ResNet-18's channels: its whole residual groups fell below it).
The pruned model is physically smaller; fine-tuning and the deploy model use it as it is.
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

COUPLED_RANKINGS = ("max", "mean")


@dataclass(frozen=True)
class SlimConfig(PipelineOptions):
    l1: float = 1e-4  # λ of the L1 penalty on BN γ before the prune
    coupled: str = "max"  # how a channel shared by several BNs (residual) is ranked: max | mean of their |γ|

    def __post_init__(self):
        super().__post_init__()
        if self.l1 < 0:
            raise AdaGrowError(f"--l1 must be 0 or more (got {self.l1})")
        if self.coupled not in COUPLED_RANKINGS:
            raise AdaGrowError(f"--coupled must be one of {', '.join(COUPLED_RANKINGS)} (got {self.coupled!r})")


def batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]


def bn_channels(model: nn.Module) -> int:
    return sum(bn.num_features for bn in batchnorms(model))


@dataclass
class ChannelGroup:
    """Channels torch-pruning removes together: a root layer's output channels and all they feed."""

    group: Any  # torch-pruning's Group, over every channel of its root layer
    importance: torch.Tensor  # per root channel: the max (or mean) |γ| over the group's BatchNorms
    bns: int  # the group's BatchNorms: the BN channels one removed group channel takes away

    @property
    def bn_channels(self) -> int:
        return self.bns * len(self.importance)


def _grouped(module: nn.Module) -> bool:
    """A grouped convolution other than depthwise: torch-pruning would need channel groups kept aligned."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 and not (
        module.groups == module.in_channels == module.out_channels)


def channel_groups(model: nn.Module, example: torch.Tensor, coupled: str = "max"
                   ) -> tuple[Any, list[ChannelGroup], list[str]]:
    """torch-pruning's dependency graph of ``model``, its groups that slimming ranks (those holding an
    affine BatchNorm; the classifier's outputs are never a group), and the root layers of groups left
    whole because a grouped convolution couples them."""
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    scorer = tp.importance.BNScaleImportance(group_reduction=coupled, normalizer=None)
    head = classifier(model)
    names = {m: name for name, m in model.named_modules()}
    groups, left_whole = [], []
    for group in graph.get_all_groups(ignored_layers=list(head.modules()) if head is not None else [],
                                      root_module_types=[tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR]):
        modules = {dep.target.module for dep, _ in group}
        bns = [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]
        if not bns:
            continue
        if any(_grouped(m) for m in modules):
            left_whole.append(names[group[0].dep.target.module])
            continue
        groups.append(ChannelGroup(group, scorer(group).float().cpu(), len(bns)))
    return graph, groups, left_whole


def choose_channels(groups: list[ChannelGroup], ratio: float) -> list[torch.Tensor]:
    """Per group, the root channels to remove: lowest importance first over all groups (one global
    threshold) until ``ratio`` of the groups' BN channels are removed (as close as the groups' BN counts
    allow), never a group's strongest channel."""
    scores, channels, owners, weights = [], [], [], []
    for i, g in enumerate(groups):
        candidates = g.importance.argsort(descending=True, stable=True)[1:]  # all but the strongest
        scores.append(g.importance[candidates])
        channels.append(candidates)
        owners.append(torch.full_like(candidates, i))
        weights.append(torch.full_like(candidates, g.bns))
    order = torch.cat(scores).argsort(stable=True)
    removed = torch.cat(weights)[order].cumsum(0).double()  # BN channels the first k+1 candidates remove
    target = ratio * sum(g.bn_channels for g in groups)
    k = int(torch.searchsorted(removed, target))  # the first k remove less than the target, k+1 at least it
    below = float(removed[k - 1]) if k > 0 else 0.0
    if k < len(removed) and float(removed[k]) - target <= target - below:
        k += 1  # one more candidate lands nearer the target
    chosen_channels, chosen_owners = torch.cat(channels)[order[:k]], torch.cat(owners)[order[:k]]
    return [chosen_channels[chosen_owners == i].sort().values for i in range(len(groups))]


def slim(model: nn.Module, example: torch.Tensor, ratio: float, coupled: str = "max") -> tuple[nn.Module, dict[str, Any]]:
    """Remove ``ratio`` of the prunable BN channels (one global threshold, smallest |γ| first) in place;
    return the model and what was removed, counted on the pruned model."""
    if not batchnorms(model):
        raise AdaGrowError("slimming ranks channels by BatchNorm γ, and this model has no BatchNorm layer "
                           "(use --method magnitude or wanda)")
    before = bn_channels(model)
    graph, groups, left_whole = channel_groups(model, example, coupled)
    if not groups:
        raise AdaGrowError("slimming found no BatchNorm channel it can remove in this model (use --method magnitude)")
    for g, idxs in zip(groups, choose_channels(groups, ratio)):
        if len(idxs):
            root = g.group[0].dep
            graph.get_pruning_group(root.target.module, root.handler, idxs.tolist()).prune()
    prunable, after = sum(g.bn_channels for g in groups), bn_channels(model)
    return model, {"achieved_sparsity": (before - after) / prunable, "bn_channels_before": before,
                   "bn_channels_after": after, "bn_channels_prunable": prunable, "groups_left_whole": left_whole}


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
        dense, params = describe(model), sum(p.numel() for p in model.parameters())
        pruned, info = slim(copy.deepcopy(model), example_input(ctx), self.cfg.ratio, self.cfg.coupled)
        self.edits = shape_edits(dense, pruned)
        return pruned, {"requested_sparsity": self.cfg.ratio, **info,
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
