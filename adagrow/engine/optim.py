"""Optimizers, the learning-rate schedule, and carrying optimizer state across a model change.

The schedule is a pure function of the global step (``lr_at``) that the runner writes into every
param group before each step, instead of a ``torch.optim.lr_scheduler`` object.  Why: growing
methods rebuild the optimizer many times during a run, and a scheduler bound to one optimizer would
have to be rebuilt and fast-forwarded each time; a function of the step survives rebuilds and
resumes for free, and the cosine is never restarted at a growth (SPEC §3.6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from adagrow.errors import AdaGrowError


def build_optimizer(
    name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov off), Adam (coupled L2, as the thesis' recipe says) or AdamW.

    A parameter may carry an ``lr_scale`` attribute (SplitGrow's per-layer learning rates): parameters
    are grouped by it, in order of first appearance, and ``set_lr`` multiplies it into the group's lr.
    The grouping is a function of the parameters alone, so a rebuilt model gets the same groups and a
    saved optimizer state loads into them."""
    params = [p for p in params if p.requires_grad]
    scales = list(dict.fromkeys(getattr(p, "lr_scale", 1.0) for p in params))
    if scales != [1.0]:
        params = [{"params": [p for p in params if getattr(p, "lr_scale", 1.0) == s], "lr_scale": s} for s in scales]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise AdaGrowError(f"unknown optimizer {name!r}; known: sgd, adam, adamw")


def lr_at(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warm-up then cosine decay from ``base_lr`` to ``min_lr`` over ``total_steps``."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def transfer_state(
    old: torch.optim.Optimizer,
    new: torch.optim.Optimizer,
    param_map: dict[nn.Parameter, tuple[nn.Parameter, tuple[slice, ...] | None]] | None = None,
) -> int:
    """Copy per-parameter state (momentum buffers, Adam moments, step counts) from ``old`` to ``new``.

    A parameter present in both optimizers as the same object keeps its state unchanged.  A new
    parameter listed in ``param_map`` as continuing an old one gets a zero-filled state of its own
    shape with the old state written into ``slices`` (or the whole tensor when ``slices`` is None and
    the shapes agree).  Parameters with no predecessor start with no state, as a fresh optimizer
    would give them.  Returns the number of parameters whose state was carried over.
    """
    param_map = param_map or {}
    carried = 0
    for group in new.param_groups:
        for p in group["params"]:
            src, slices = (p, None) if p in old.state else param_map.get(p, (None, None))
            if src is None or src not in old.state:
                continue
            new_state = {}
            for key, value in old.state[src].items():
                if torch.is_tensor(value) and value.dim() > 0:
                    if value.shape == p.shape and slices is None:
                        new_state[key] = value.clone()
                    else:
                        buf = torch.zeros_like(p, memory_format=torch.preserve_format)
                        index = slices if slices is not None else tuple(slice(0, n) for n in value.shape)
                        buf[index] = value
                        new_state[key] = buf
                else:
                    # scalars such as Adam's ``step`` are carried as they are
                    new_state[key] = value.clone() if torch.is_tensor(value) else value
            new.state[p] = new_state
            carried += 1
    return carried
