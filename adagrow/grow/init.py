"""Initialisation of the parameters a growth adds (SPEC §3.6, Table 3-9).

``inherited`` (default) re-draws each new tensor with the model's own initialiser (Kaiming fan-out
for convs, γ=1, β=0).  The ablation alternatives are zeros, uniform ±scale, Gaussian N(0, scale),
Gaussians fitted to the local neighbours (the layer next to a new layer, or the unit a branch joins)
or to all existing parameters of the same kind, and local-learning (inherited, then the new
parameters alone are trained with Adam; see :func:`local_learning`).  The released code's N(0, 0.2)
on every new tensor is ``gaussian`` with scale 0.2.

Random draws come from a ``torch.Generator`` seeded by the model's decision RNG, so growth never
touches the global torch RNG and a resumed run draws the same values.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import torch
from torch import nn

from adagrow.errors import AdaGrowError


def _kind(name: str, p: torch.Tensor) -> tuple[str, int]:
    """What a tensor is, for matching it with existing ones: last two name parts and rank."""
    return ".".join(name.split(".")[-2:]), p.dim()


def _fit(tensors: list[torch.Tensor]) -> tuple[float, float] | None:
    if not tensors:
        return None
    flat = torch.cat([t.detach().flatten().float().cpu() for t in tensors])
    return float(flat.mean()), float(flat.std()) if flat.numel() > 1 else 0.0


@torch.no_grad()
def init_new_params(
    new: list[tuple[str, nn.Parameter]],
    scheme: str,
    scale: float,
    rng: random.Random,
    neighbours: list[tuple[str, nn.Parameter]],
    existing: list[tuple[str, nn.Parameter]],
) -> None:
    """Initialise the freshly added parameters ``new`` in place according to ``scheme``."""
    gen = torch.Generator().manual_seed(rng.getrandbits(63))
    for name, p in new:
        buf = torch.empty(p.shape, dtype=torch.float32)
        kind = _kind(name, p)
        if scheme in ("inherited", "local-learning"):
            if p.dim() == 4:
                nn.init.kaiming_normal_(buf, mode="fan_out", nonlinearity="relu", generator=gen)
            elif name.endswith("bn.weight"):
                buf.fill_(1.0)
            else:
                buf.zero_()
        elif scheme == "zeros":
            buf.zero_()
        elif scheme == "uniform":
            buf.uniform_(-scale, scale, generator=gen)
        elif scheme == "gaussian":
            buf.normal_(0.0, scale, generator=gen)
        elif scheme in ("gaussian-local", "gaussian-global"):
            pool = neighbours if scheme == "gaussian-local" else existing
            stats = _fit([q for n, q in pool if _kind(n, q) == kind]) or _fit([q for n, q in existing if q.dim() == p.dim()])
            mean, std = stats if stats is not None else (0.0, scale)
            buf.normal_(mean, std, generator=gen) if std > 0 else buf.fill_(mean)
        else:
            raise AdaGrowError(f"unknown init scheme {scheme!r}")
        p.copy_(buf.to(device=p.device, dtype=p.dtype))


def local_learning(
    model: nn.Module,
    new_params: Iterable[nn.Parameter],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float = 1e-3,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    weight_decay: float = 0.0,
    every: int | None = None,
    until: Callable[[float], bool] | None = None,
) -> int:
    """Train only ``new_params`` (Adam, ``lr``, coupled L2 ``weight_decay``) for at most ``steps``
    batches; the rest stays unchanged.

    With ``every`` and ``until``: after each ``every`` batches (an "epoch"), ``until`` gets the
    training accuracy (percent) of those batches, counted as they were trained, and training ends
    when it returns True (AutoGrow's AdamInit: epochs until the training accuracy recovers).

    Old parameters are frozen for the duration (no gradients are even computed for them).  BN running
    statistics of the whole model update as in any training step.  Returns the steps taken.
    """
    new_params = list(new_params)
    new_ids = {id(p) for p in new_params}
    frozen = [p for p in model.parameters() if id(p) not in new_ids and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(new_params, lr=lr, weight_decay=weight_decay)
    taken = correct = seen = 0
    was_training = model.training
    model.train()
    try:
        for x, y in batches:
            if taken >= steps:
                break
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss_fn(logits, y).backward()
            opt.step()
            taken += 1
            if until is not None and every:
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += y.shape[0]
                if taken % every == 0:
                    if until(100.0 * correct / max(seen, 1)):
                        break
                    correct = seen = 0
    finally:
        for p in frozen:
            p.requires_grad_(True)
        for p in new_params:
            p.grad = None
        model.train(was_training)
    return taken
