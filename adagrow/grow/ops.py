"""Growth operations on a :class:`~adagrow.models.cnn.GrowableCNN`: insert layers, add branches, undo.

Growth only *adds* modules; every existing ``Parameter`` object survives, so the runner's
``transfer_state`` keeps the optimizer state (momentum) of old parameters untouched and new ones start
without state.  Each operation returns a JSON-friendly event dict describing what it did.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.grow.init import init_new_params
from adagrow.grow.policies import choose_branch, choose_depth, choose_units, room
from adagrow.models.reparam import BranchSpec


def _init(model, new: list[tuple[str, nn.Parameter]], neighbours: list[tuple[str, nn.Parameter]]) -> None:
    new_ids = {id(p) for _, p in new}
    existing = [(n, p) for n, p in model.named_parameters() if id(p) not in new_ids]
    init_new_params(new, model.policy.init, model.policy.init_scale, model.rng, neighbours, existing)


def grow_depth(model, stage: int | None = None, position: int | None = None, n: int | None = None) -> dict[str, Any] | None:
    """Insert ``n`` new layers into block ``stage`` at ``position``.

    With ``stage=None`` the model's depth policy picks block and position (None is returned when
    every block is full); with a ``stage`` but no ``position`` the layers are appended.  A block never
    grows past its cap (``layers_per_block_cap``, the target's depth): a multi-layer growth inserts
    only the layers that still fit (Table 3-2 grows to VGG-2-2-2 whatever the step).
    """
    policy = model.policy
    n = n or policy.layers_per_growth
    if stage is None:
        choice = choose_depth(model, policy, model.rng)
        if choice is None:
            return None
        stage, position = choice
    if not 0 <= stage < len(model.blocks):
        raise ArchitectureError(f"block {stage} does not exist; the model has {len(model.blocks)} blocks")
    fits = room(model, policy, stage)
    if fits == 0:
        raise ArchitectureError(f"block {stage} is full: it has reached its cap of {model.depths[stage]} layers")
    n = n if fits is None else min(n, fits)
    block = model.blocks[stage]
    position = len(block) if position is None else position
    if not 0 <= position <= len(block):
        raise ArchitectureError(f"position {position} is outside block {stage} of {len(block)} layers")
    new_layers = [model.new_layer(stage) for _ in range(n)]
    for i, layer in enumerate(new_layers):
        block.insert(position + i, layer)
    new = [(name, p) for layer in new_layers for name, p in layer.named_parameters()]
    # neighbours for "gaussian-local": the layer before the insertion point, else the one after
    neighbour = block[position - 1] if position > 0 else (block[position + n] if len(block) > position + n else None)
    _init(model, new, list(neighbour.named_parameters()) if neighbour is not None else [])
    model.last_grown_block = stage
    return {
        "kind": "depth",
        "where": f"block{stage + 1}[{position}]",
        "what": f"{n}x {type(new_layers[0]).__name__}",
        "block": stage,
        "position": position,
        "layers": n,
        "arch": model.arch(),
        "new_params": sum(p.numel() for _, p in new),
    }


def grow_width(model, units: list[str] | None = None, branches: list[str] | None = None) -> dict[str, Any] | None:
    """Add one branch to each of ``units`` (names from ``model.units()``).

    ``units=None``: the top ``width_ratio`` units by importance; ``branches=None``: the branch
    policy picks each kind.  Units whose space a no-replacement policy exhausted are skipped; None is
    returned when nothing was added.
    """
    policy = model.policy
    table = dict(model.units())
    names = choose_units(model, policy) if units is None else list(units)
    if branches is not None and len(branches) != len(names):
        raise ArchitectureError(f"{len(branches)} branches given for {len(names)} units")
    added_units, added_kinds, new_count = [], [], 0
    for i, name in enumerate(names):
        if name not in table:
            raise ArchitectureError(f"{name!r} is not a growable unit; known: {', '.join(table)}")
        unit = table[name]
        spec = BranchSpec.parse(branches[i]) if branches is not None else choose_branch(unit, policy, model.rng)
        if spec is None:
            continue
        old = [(f"{name}.{n}", p) for n, p in unit.named_parameters()]
        branch = unit.add_branch(spec)
        new = [(f"{name}.branches.{len(unit.branches) - 1}.{n}", p) for n, p in branch.named_parameters()]
        _init(model, new, old)
        added_units.append(name)
        added_kinds.append(spec.name)
        new_count += sum(p.numel() for _, p in new)
    if not added_units:
        return None
    return {
        "kind": "width",
        "where": added_units,
        "what": added_kinds,
        "arch": model.arch(),
        "new_params": new_count,
    }


def undo(model, event: dict[str, Any]) -> None:
    """Remove what ``event`` (returned by :func:`grow_depth` / :func:`grow_width`) added."""
    if event["kind"] == "depth":
        block = model.blocks[event["block"]]
        for _ in range(event["layers"]):
            del block[event["position"]]
    else:
        table = dict(model.units())
        for name in event["where"]:
            del table[name].branches[-1]
