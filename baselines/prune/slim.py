"""Network slimming (Liu et al., ICCV 2017): L1 on BN γ while training, one global threshold, structured removal.

Before the prune the training loss gets λ·Σ|γ| over every BatchNorm (``extra_loss``; λ = 1e-4 as for
VGG in the paper, ``--l1``).  At the prune point the channels with the smallest |γ| are removed with
torch-pruning's dependency graph, so residual additions and concatenations keep matching channels.

How channels are ranked (``channel_groups``): channels that must go together form one *group* (a
residual stage's channel lives in the stem's BN and in every block's last BN); a group channel is
ranked by the largest |γ| over its BNs (``--coupled max``, torch-pruning's ``BNScaleImportance`` with
no normaliser, so the values are raw |γ| as in the paper): it goes only when *every* BN it lives in has
let it fade, which keeps the residual width unless the whole stage agrees, close to the paper's ResNets
(they never cut the residual width: a channel-selection layer prunes inside blocks only).  ``--coupled
mean`` ranks by the mean instead; then the residual channels, whose blocks' last BNs timm starts at
γ = 0, go first.

Where the one global threshold θ goes (``--target``); every candidate with importance ≤ θ is removed:
- ``params`` (default, the thesis' tables: "50%" keeps half of ResNet-50's parameters): θ is bisected
  so that ``--ratio`` of the model's parameters go, as near as the channels allow.  The parameters a
  choice removes are counted from the dependency graph (``ParamCounter``), without pruning a copy.
- ``channels`` (Liu et al.'s ``--percent``): θ is |γ| at position ⌊ratio·N⌋ (0-based) of all N
  prunable BN channels sorted, and channels with |γ| > θ stay (``vggprune.py``: ``thre_index =
  int(total * percent)``, ``gt(thre)``), so ties at θ go together and ⌊ratio·N⌋ + 1 channels go when
  the values are distinct.  A group channel counts once per BN it lives in.  On a plain network this
  removes the channels torch-pruning's global ``BNScalePruner`` removes, except that torch-pruning
  removes one fewer when ratio·N is a whole number (it removes N − ⌊(1−ratio)·N⌋); on a residual
  network torch-pruning counts a coupled channel once, not once per BN, so it removes fewer BN channels.
Each group keeps its strongest channel: a layer with no channel left would cut the network (and
torch-pruning silently refuses such a group, which is how a plain global threshold used to remove
10% instead of 50% of a trained ResNet-18's channels: its whole residual groups fell below it).
The pruned model is physically smaller; fine-tuning and the deploy model use it as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from baselines.prune.pipeline import PipelineOptions, PruningPipeline, classifier, example_input
from baselines.prune.structure import apply_shape_edits, describe, shape_edits

COUPLED_RANKINGS = ("max", "mean")
TARGETS = ("params", "channels")


@dataclass(frozen=True)
class SlimConfig(PipelineOptions):
    l1: float = 1e-4  # λ of the L1 penalty on BN γ before the prune
    coupled: str = "max"  # how a channel shared by several BNs (residual) is ranked: max | mean of their |γ|
    target: str = "params"  # what --ratio is a share of: the model's parameters | its BN channels (Liu et al.)

    def __post_init__(self):
        super().__post_init__()
        if self.l1 < 0:
            raise AdaGrowError(f"--l1 must be 0 or more (got {self.l1})")
        if self.coupled not in COUPLED_RANKINGS:
            raise AdaGrowError(f"--coupled must be one of {', '.join(COUPLED_RANKINGS)} (got {self.coupled!r})")
        if self.target not in TARGETS:
            raise AdaGrowError(f"--target must be one of {', '.join(TARGETS)} (got {self.target!r})")


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
    # (module, "out" | "in", indices of that side one root channel takes away): what removing a channel cuts
    reach: list[tuple[nn.Module, str, float]] = field(default_factory=list)

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
        importance = scorer(group).float().cpu()
        reach: dict[tuple[nn.Module, str], float] = {}
        for dep, idxs in group:
            side = "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
            reach.setdefault((dep.target.module, side), len(idxs) / len(importance))  # e.g. a flatten: H·W each
        groups.append(ChannelGroup(group, importance, len(bns), [(m, side, n) for (m, side), n in reach.items()]))
    return graph, groups, left_whole


@dataclass
class Ranking:
    """Every channel that may go (all but each group's strongest), lowest importance first (ties in a
    fixed order: group, then channel position); removing the first ``k`` is one global threshold."""

    scores: torch.Tensor
    owners: torch.Tensor  # the group of each
    channels: torch.Tensor  # its root channel in that group

    @classmethod
    def of(cls, groups: list[ChannelGroup]) -> Ranking:
        candidates = [g.importance.argsort(descending=True, stable=True)[1:] for g in groups]
        scores = torch.cat([g.importance[c] for g, c in zip(groups, candidates)])
        owners = torch.cat([torch.full_like(c, i) for i, c in enumerate(candidates)])
        order = scores.argsort(stable=True)
        return cls(scores[order], owners[order], torch.cat(candidates)[order])

    def first(self, k: int, n_groups: int) -> list[torch.Tensor]:
        """Per group, the root channels among the first ``k`` (sorted)."""
        owners, channels = self.owners[:k], self.channels[:k]
        return [channels[owners == i].sort().values for i in range(n_groups)]

    def at_most(self, threshold: float) -> int:
        """How many candidates have importance ≤ ``threshold`` (all of them go: ties together)."""
        return int(torch.searchsorted(self.scores, torch.tensor(threshold, dtype=self.scores.dtype), right=True))


def liu_threshold(groups: list[ChannelGroup], ratio: float) -> float:
    """Liu et al.'s threshold: the value at position ⌊ratio·N⌋ of all N BN channels' |γ| sorted (a coupled
    channel once per BN it lives in); channels above it stay."""
    values = torch.cat([g.importance.repeat(g.bns) for g in groups]).sort().values
    return float(values[min(int(len(values) * ratio), len(values) - 1)])


class ParamCounter:
    """The parameters left after removing some channels of each group, counted from what each removed
    channel cuts (output or input side of every layer in its group), without pruning a copy."""

    def __init__(self, model: nn.Module, groups: list[ChannelGroup]):
        self.total = sum(p.numel() for p in model.parameters())
        self.groups = groups
        self.modules = {m for g in groups for m, _, _ in g.reach}

    def removed(self, chosen: list[torch.Tensor]) -> int:
        cut: dict[tuple[nn.Module, str], float] = {}
        for g, idxs in zip(self.groups, chosen):
            for m, side, per_channel in g.reach:
                cut[m, side] = cut.get((m, side), 0.0) + per_channel * len(idxs)
        return round(sum(_removed_params(m, cut.get((m, "out"), 0.0), cut.get((m, "in"), 0.0)) for m in self.modules))


def _removed_params(m: nn.Module, out: float, inp: float) -> float:
    """Parameters of ``m`` (its own) that go when ``out`` output and ``inp`` input channels go."""
    params = list(m.parameters(recurse=False))
    if not params or not (out or inp):
        return 0.0
    if isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1 or params[0].dim() == 1:
        # a depthwise convolution or a norm layer: one channel dimension, cut from either side
        width = params[0].shape[0]
        return sum(p.numel() for p in params) * max(out, inp) / width
    left = 0.0
    for p in params:
        keep = (p.shape[0] - out) / p.shape[0]
        if p.dim() > 1:
            keep *= (p.shape[1] - inp) / p.shape[1]
        left += p.numel() * keep
    return sum(p.numel() for p in params) - left


def params_cut(groups: list[ChannelGroup], ranking: Ranking, counter: ParamCounter, ratio: float) -> int:
    """How many of the lowest-ranked channels to remove so that the parameters removed are nearest ``ratio``
    of the model's: bisection over the threshold's position (the count grows with it)."""
    target = ratio * counter.total

    def removed(k: int) -> int:
        return counter.removed(ranking.first(k, len(groups)))

    lo, hi = 0, len(ranking.scores)  # removed(lo) < target unless lo = 0; the answer is in [lo, hi]
    if removed(hi) < target:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if removed(mid) < target else (lo, mid)
    return lo if target - removed(lo) < removed(hi) - target else hi


def slim(model: nn.Module, example: torch.Tensor, ratio: float, coupled: str = "max", target: str = "params"
         ) -> tuple[nn.Module, dict[str, Any]]:
    """Remove the channels of smallest |γ| under one global threshold in place, ``ratio`` of the model's
    parameters (``target="params"``) or Liu et al.'s share of BN channels (``"channels"``); return the
    model and what was removed, counted on the pruned model."""
    if not batchnorms(model):
        raise AdaGrowError("slimming ranks channels by BatchNorm γ, and this model has no BatchNorm layer "
                           "(use --method magnitude or wanda)")
    before, params_before = bn_channels(model), sum(p.numel() for p in model.parameters())
    graph, groups, left_whole = channel_groups(model, example, coupled)
    if not groups:
        raise AdaGrowError("slimming found no BatchNorm channel it can remove in this model (use --method magnitude)")
    counter, ranking = ParamCounter(model, groups), Ranking.of(groups)
    if target == "params":
        k = params_cut(groups, ranking, counter, ratio)
        threshold = float(ranking.scores[k - 1]) if k else None
    else:
        threshold = liu_threshold(groups, ratio)
        k = ranking.at_most(threshold)
    chosen = ranking.first(k, len(groups))
    predicted = counter.removed(chosen)
    for g, idxs in zip(groups, chosen):
        if len(idxs):
            root = g.group[0].dep
            graph.get_pruning_group(root.target.module, root.handler, idxs.tolist()).prune()
    prunable, after = sum(g.bn_channels for g in groups), bn_channels(model)
    params_removed = params_before - sum(p.numel() for p in model.parameters())
    shares = {"params": params_removed / params_before, "channels": (before - after) / prunable}
    return model, {"target": target, "achieved_sparsity": shares[target], "threshold": threshold,
                   "bn_channel_share_removed": shares["channels"], "params_removed_share": shares["params"],
                   # what the threshold was chosen by; equal to the pruned count unless a layer type is unknown to it
                   "params_removed_predicted_share": predicted / params_before,
                   "bn_channels_before": before, "bn_channels_after": after, "bn_channels_prunable": prunable,
                   "groups_left_whole": left_whole}


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
        dense = describe(model)
        pruned, info = slim(copy.deepcopy(model), example_input(ctx), self.cfg.ratio, self.cfg.coupled, self.cfg.target)
        self.edits = shape_edits(dense, pruned)
        return pruned, {"requested_sparsity": self.cfg.ratio, **info}

    def restore(self, model: nn.Module) -> nn.Module:
        return apply_shape_edits(model, self.edits)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "edits": self.edits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.edits = state["edits"]


METHODS.register("slim", MethodEntry(SlimConfig, SlimPruning,
                                     "network slimming: L1 on BN γ, global threshold, channels physically removed"))
