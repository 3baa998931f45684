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

    A parameter may carry an ``lr_scale`` attribute (a per-tensor learning-rate multiplier): parameters
    are grouped by it, in order of first appearance, and ``set_lr`` multiplies it into the group's lr.
    The grouping is a function of the parameters alone, so a rebuilt model gets the same groups and a
    saved optimizer state loads into them.

    A parameter may also carry an ``lr_mask`` attribute, a tensor of its shape holding a multiplier
    per entry (SplitGrow's per-sub-network learning rates): see :func:`scale_updates`."""
    params = [p for p in params if p.requires_grad]
    masked = [p for p in params if getattr(p, "lr_mask", None) is not None]
    scales = list(dict.fromkeys(getattr(p, "lr_scale", 1.0) for p in params))
    if scales != [1.0]:
        params = [{"params": [p for p in params if getattr(p, "lr_scale", 1.0) == s], "lr_scale": s} for s in scales]
    if name == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif name == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif name == "adamw":
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    else:
        raise AdaGrowError(f"unknown optimizer {name!r}; known: sgd, adam, adamw")
    if masked:
        scale_updates(optimizer, masked)
    return optimizer


def scale_updates(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    """Give every entry of ``params`` the learning rate lr·``p.lr_mask`` (entry by entry).

    torch optimizers set one learning rate per parameter group, so the step runs at the group's lr and
    a post-step hook multiplies each entry's change by its mask: θ ← θ_before + m·(θ_after − θ_before).
    This is exactly the step an optimizer with lr·m would make for that entry, weight decay and
    momentum included, for the three optimizers here: SGD's momentum buffer accumulates g + λθ and the
    step is lr times the buffer (the buffer does not depend on lr, so later steps agree too); Adam's
    step (coupled L2 inside g) is lr times a function of the moments; AdamW's decoupled decay and
    its Adam step are both proportional to lr.  Scaling the gradient instead would be exact for plain
    SGD only (Adam's step is invariant to the gradient's scale, and the weight-decay term would keep
    the group's lr)."""
    before: list[torch.Tensor] = []

    def keep(opt, args, kwargs):
        before[:] = [p.detach().clone() for p in params]

    @torch.no_grad()
    def scale(opt, args, kwargs):
        for p, old in zip(params, before):
            if p.lr_mask.device != p.device or p.lr_mask.dtype != p.dtype:
                p.lr_mask = p.lr_mask.to(p)  # the model moved after the mask was made
            p.sub_(old).mul_(p.lr_mask).add_(old)
        before.clear()

    optimizer.register_step_pre_hook(keep)
    optimizer.register_step_post_hook(scale)


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
