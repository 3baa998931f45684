"""MAML's inner loop on the super-network: a few SGD steps on a task's support set, as fast weights.

The fast weights are a ``{name: tensor}`` dict run through ``torch.func.functional_call``, so the
super-network's own parameters (the meta-weights) are never written.  Only the parameters the
architecture uses are adapted (the others get no gradient).  With ``create_graph`` the steps stay
differentiable, so the query loss after adaptation trains the meta-weights through them (second-order
MAML); without it the meta-gradient is the first-order approximation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from baselines.mnas.supernet import SuperNet


def task_loss(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    return F.cross_entropy(out, y) if classification else F.mse_loss(out, y)


def task_score(out: torch.Tensor, y: torch.Tensor, classification: bool) -> float:
    """Accuracy in % (classification) or MSE (regression) of one query set."""
    if classification:
        return float((out.argmax(1) == y).float().mean()) * 100.0
    return float(F.mse_loss(out, y))


def adapt(net: SuperNet, params: dict[str, torch.Tensor], arch: tuple[int, ...], film, x: torch.Tensor, y: torch.Tensor,
          *, steps: int, lr: float, classification: bool, create_graph: bool) -> dict[str, torch.Tensor]:
    """The fast weights after ``steps`` gradient steps of the support loss from ``params``."""
    names = net.active_names(arch)
    fast = dict(params)
    for _ in range(steps):
        loss = task_loss(functional_call(net, fast, (x, arch, film)), y, classification)
        # allow_unused: an architecture that cuts every path from the stem (all edges "zero") leaves it unused
        grads = torch.autograd.grad(loss, [fast[n] for n in names], create_graph=create_graph, allow_unused=True)
        fast.update({n: fast[n] - lr * g for n, g in zip(names, grads, strict=True) if g is not None})
    return fast


def query_output(net: SuperNet, fast: dict[str, torch.Tensor], arch: tuple[int, ...], film, x: torch.Tensor):
    return functional_call(net, fast, (x, arch, film))
