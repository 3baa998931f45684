"""Resuming a physically pruned model: record how its layers' shapes differ from the dense model's.

Structured pruning (torch-pruning) shrinks tensors and the attributes that describe them
(``out_channels``, ``num_features``, ``in_features``...) in place; the module tree stays the same.
``shape_edits(dense, pruned)`` lists those differences (a few numbers per layer, no weights), the
method keeps them in its state, and ``apply_shape_edits`` turns a freshly built dense model into an
empty model of the pruned shapes, into which the checkpoint's values are then loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_SCALARS = (int, float, bool, tuple)


def _attributes(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, _SCALARS)}


def _tensors(module: nn.Module) -> dict[str, tuple[int, ...]]:
    own = {**module._parameters, **module._buffers}
    return {k: tuple(t.shape) for k, t in own.items() if t is not None}


def shape_edits(dense: dict[str, dict], pruned: nn.Module) -> dict[str, dict[str, Any]]:
    """Per module of ``pruned``: the attributes and tensor shapes that differ from ``dense``
    (``describe(dense_model)`` taken before pruning)."""
    edits = {}
    for name, module in pruned.named_modules():
        before = dense.get(name, {"attrs": {}, "shapes": {}})
        attrs = {k: v for k, v in _attributes(module).items() if before["attrs"].get(k) != v}
        shapes = {k: s for k, s in _tensors(module).items() if before["shapes"].get(k) != s}
        if attrs or shapes:
            edits[name] = {"attrs": attrs, "shapes": shapes}
    return edits


def describe(model: nn.Module) -> dict[str, dict]:
    return {name: {"attrs": _attributes(m), "shapes": _tensors(m)} for name, m in model.named_modules()}


def apply_shape_edits(model: nn.Module, edits: dict[str, dict[str, Any]]) -> nn.Module:
    modules = dict(model.named_modules())
    for name, edit in edits.items():
        module = modules[name]
        for k, v in edit["attrs"].items():
            setattr(module, k, v)
        for k, shape in edit["shapes"].items():
            if k in module._parameters:
                old = module._parameters[k]
                module._parameters[k] = nn.Parameter(torch.empty(shape, dtype=old.dtype), old.requires_grad)
            else:
                module._buffers[k] = torch.empty(shape, dtype=module._buffers[k].dtype)
    return model
