"""Where and what to grow: depth location, width units and branch kinds (SPEC §3.3–3.4).

Every decision is a pure function of the model's BN γ values and a ``random.Random`` the caller
owns (the model's ``rng``), so a resumed run makes the same decisions as an uninterrupted one.
Scoring reads a few hundred γ values: negligible next to an epoch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from adagrow.errors import AdaGrowError
from adagrow.models.reparam import GREEDY_ORDER, BranchSpec, RepUnit

DEPTH_POLICIES = ("greedy", "random", "sequential")
BRANCH_POLICIES = ("random", "random-no-replace", "greedy")
INITS = (
    "inherited", "zeros", "uniform", "gaussian", "gaussian-local", "gaussian-global", "local-learning",
)


@dataclass(frozen=True)
class GrowthPolicy:
    """The knobs a growable model needs to decide a growth on its own (thesis defaults)."""

    depth_policy: str = "greedy"  # greedy (mean |γ|) | random | sequential (round-robin, append at end)
    branch_policy: str = "random"  # random (with replacement) | random-no-replace | greedy (max difference)
    width_ratio: float = 0.7  # share of units (ranked by importance) that get one branch per width growth
    layers_per_growth: int = 1  # layers inserted by one depth growth (Table 3-2)
    init: str = "inherited"  # how new parameters start (Table 3-9); see adagrow.grow.init
    init_scale: float = 0.1  # the bound / σ for "uniform" / "gaussian"
    signed_importance: bool = False  # released code: signed mean γ instead of mean |γ|
    entry_bn_only: bool = False  # released code: score a block by its entry BN only (stem / transition)
    avoid_last_block: bool = False  # released code: never deepen the block grown last time
    conv_branches_only: bool = False  # released code: no pooling / BN-only branches
    layers_per_block_cap: int | None = None  # no block grows beyond this many layers (MNIST: 1)
    max_depths: tuple[int, ...] | None = None  # per-block caps (the target architecture)

    def __post_init__(self):
        if self.depth_policy not in DEPTH_POLICIES:
            raise AdaGrowError(f"unknown depth policy {self.depth_policy!r}; known: {', '.join(DEPTH_POLICIES)}")
        if self.branch_policy not in BRANCH_POLICIES:
            raise AdaGrowError(f"unknown branch policy {self.branch_policy!r}; known: {', '.join(BRANCH_POLICIES)}")
        if self.init not in INITS:
            raise AdaGrowError(f"unknown init {self.init!r}; known: {', '.join(INITS)}")
        if not 0.0 <= self.width_ratio <= 1.0:
            raise AdaGrowError(f"width_ratio must be in [0, 1], got {self.width_ratio}")
        if self.layers_per_growth < 1:
            raise AdaGrowError("layers_per_growth must be at least 1")


def block_scores(model, policy: GrowthPolicy) -> list[float]:
    """Importance of each block: mean over its layers of their mean |γ|; an empty block (or every
    block with ``entry_bn_only``) is scored by its entry BN: the stem's for block 0, else the BN of
    the transition that leads into it."""
    signed = policy.signed_importance
    scores = []
    for stage, block in enumerate(model.blocks):
        if len(block) and not policy.entry_bn_only:
            scores.append(sum(layer.importance(signed) for layer in block) / len(block))
        else:
            bn = model.stem.unit.bn if stage == 0 else model.transitions[stage - 1].bn
            g = bn.weight.detach()
            scores.append(float(g.mean() if signed else g.abs().mean()))
    return scores


def room(model, policy: GrowthPolicy, stage: int) -> int | None:
    """How many more layers block ``stage`` may receive under the caps (None: no cap)."""
    caps = [c for c in (policy.layers_per_block_cap,
                        policy.max_depths[stage] if policy.max_depths is not None else None) if c is not None]
    return max(0, min(caps) - model.depths[stage]) if caps else None


def _open_blocks(model, policy: GrowthPolicy) -> list[int]:
    """Blocks that may still receive a layer."""
    out = []
    for stage in range(len(model.depths)):
        if room(model, policy, stage) == 0:
            continue
        if policy.avoid_last_block and stage == model.last_grown_block and len(model.blocks) > 1:
            continue
        out.append(stage)
    return out


def choose_depth(model, policy: GrowthPolicy, rng: random.Random) -> tuple[int, int] | None:
    """``(block, position)`` of the next layer, or None when every block is full."""
    open_blocks = _open_blocks(model, policy)
    if not open_blocks and policy.avoid_last_block:  # the only open block is the last one grown
        open_blocks = _open_blocks(model, GrowthPolicy(**{**policy.__dict__, "avoid_last_block": False}))
    if not open_blocks:
        return None
    if policy.depth_policy == "random":
        stage = rng.choice(open_blocks)
        return stage, rng.randint(0, model.depths[stage])
    if policy.depth_policy == "sequential":
        # round-robin: the first open block after the one grown last, appended at its end
        last = -1 if model.last_grown_block is None else model.last_grown_block
        n = len(model.blocks)
        stage = min(open_blocks, key=lambda s: (s - last - 1) % n)
        return stage, model.depths[stage]
    scores = block_scores(model, policy)
    stage = max(open_blocks, key=lambda s: (scores[s], -s))
    block = model.blocks[stage]
    if policy.entry_bn_only or not len(block):  # released code appends at the end
        return stage, len(block)
    signed = policy.signed_importance
    best = max(range(len(block)), key=lambda i: (block[i].importance(signed), -i))
    return stage, best + 1


def choose_units(model, policy: GrowthPolicy) -> list[str]:
    """Names of the units that receive a branch: the top ``width_ratio`` share by importance
    (at least one when the ratio is positive; rounding half up)."""
    units = model.units()
    if policy.width_ratio <= 0 or not units:
        return []
    k = max(1, math.floor(len(units) * policy.width_ratio + 0.5))
    ranked = sorted(units, key=lambda nu: -nu[1].importance(policy.signed_importance))
    return [name for name, _ in ranked[:k]]


def choose_branch(unit: RepUnit, policy: GrowthPolicy, rng: random.Random) -> BranchSpec | None:
    """The branch kind a unit receives, or None when a no-replacement policy exhausted its space."""
    candidates = unit.candidate_branches()
    if policy.conv_branches_only:
        candidates = [c for c in candidates if c.kind == "conv"]
    if policy.branch_policy == "random":
        return rng.choice(candidates)
    present = {b.spec for b in unit.branches}
    remaining = [c for c in candidates if c not in present]
    if not remaining:
        return None
    if policy.branch_policy == "random-no-replace":
        return rng.choice(remaining)
    ordered = [c for c in GREEDY_ORDER if c in remaining] + [c for c in remaining if c not in GREEDY_ORDER]
    return ordered[0]
