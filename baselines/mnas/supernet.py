"""The search space and the super-network that holds the meta-weights of every architecture in it.

A cell (DARTS-like, Liu et al. 2019) has ``nodes`` intermediate nodes; node 0 is the stem's output and
every earlier node feeds each intermediate node through one *edge*, so 3 nodes have 1 + 2 + 3 = 6 edges.
An architecture picks one operation per edge; the cell's output is the mean of its intermediate nodes.
The super-network keeps one set of weights per (edge, operation) — the meta-weights ``w~(alpha)``
shared by all tasks — and runs only the operations an architecture picks (one-shot weight sharing).

Operations (images, width channels, stride 1): 3x3 conv, 5x5 conv (each conv-BN-ReLU), 3x3 max and
average pooling, identity, zero (the edge is cut).  Sinusoid (vectors of ``width`` units): linear+ReLU,
linear+tanh, identity, zero.  BatchNorm uses the batch's statistics only (no running averages), as MAML
does: a task's support set and its query set are each normalised by themselves.

``film``: optional per-channel (scale, shift) applied to the cell's output — the ``--modulation film``
option, computed from the task embedding outside this module.  The default, the seed's modulation of
the kernels themselves, needs nothing here: it hands the forward pass modulated weights
(``modulation.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_OPS = ("conv3x3", "conv5x5", "max_pool", "avg_pool", "skip", "zero")
VECTOR_OPS = ("fc_relu", "fc_tanh", "skip", "zero")
PARAMETRIC = {"conv3x3", "conv5x5", "fc_relu", "fc_tanh"}
SHORT = {"conv3x3": "c3", "conv5x5": "c5", "max_pool": "mp", "avg_pool": "ap", "skip": "id", "zero": "0",
         "fc_relu": "fr", "fc_tanh": "ft"}


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """(from node, to node) of every edge, in the order an architecture lists its operations."""
    return [(j, i) for i in range(1, nodes + 1) for j in range(i)]


def arch_string(ops: tuple[str, ...], arch: tuple[int, ...]) -> str:
    """Compact, human-readable architecture: one short op name per edge, e.g. ``c3-c5-mp-id-0-c3``."""
    return "-".join(SHORT[ops[a]] for a in arch)


def _make_op(name: str, width: int) -> nn.Module:
    if name in ("conv3x3", "conv5x5"):
        k = 3 if name == "conv3x3" else 5
        return nn.Sequential(nn.Conv2d(width, width, k, padding=k // 2, bias=False),
                             nn.BatchNorm2d(width, track_running_stats=False), nn.ReLU())
    return nn.Sequential(nn.Linear(width, width), nn.ReLU() if name == "fc_relu" else nn.Tanh())


def _apply_free_op(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "max_pool":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    if name == "avg_pool":
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    if name == "skip":
        return x
    raise ValueError(name)  # "zero" never gets here: the edge is left out


class SuperNet(nn.Module):
    """Stem -> one searched cell -> head, for images (``input_shape`` (C, H, W)) or vectors ((d,))."""

    def __init__(self, input_shape: tuple[int, ...], out_dim: int, *, width: int, nodes: int):
        super().__init__()
        self.image = len(input_shape) == 3
        self.ops = IMAGE_OPS if self.image else VECTOR_OPS
        self.edges = cell_edges(nodes)
        self.nodes = nodes
        if self.image:
            self.stem = nn.Sequential(nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width, track_running_stats=False), nn.ReLU(), nn.MaxPool2d(2))
        else:
            self.stem = nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU())
        self.cell = nn.ModuleDict({self.key(e, op): _make_op(op, width)
                                   for e in range(len(self.edges)) for op in self.ops if op in PARAMETRIC})
        self.head = nn.Linear(width, out_dim)

    @staticmethod
    def key(edge: int, op: str) -> str:
        return f"e{edge}_{op}"

    def forward(self, x: torch.Tensor, arch: tuple[int, ...], film: tuple[torch.Tensor, torch.Tensor] | None = None):
        states = [self.stem(x)]
        for node in range(1, self.nodes + 1):
            total = torch.zeros_like(states[0])
            for e, (src, dst) in enumerate(self.edges):
                op = self.ops[arch[e]]
                if dst != node or op == "zero":
                    continue
                total = total + (self.cell[self.key(e, op)](states[src]) if op in PARAMETRIC
                                 else _apply_free_op(op, states[src]))
            states.append(total)
        out = torch.stack(states[1:]).mean(0)
        if film is not None:
            scale, shift = film
            shape = (1, -1, 1, 1) if self.image else (1, -1)
            out = out * (1 + scale.view(shape)) + shift.view(shape)
        if self.image:
            out = F.adaptive_avg_pool2d(F.max_pool2d(out, 2), 1).flatten(1)
        return self.head(out)

    def active_names(self, arch: tuple[int, ...]) -> list[str]:
        """Names of the parameters ``arch`` uses: what the inner loop adapts and what the model's size is."""
        used = {self.key(e, self.ops[a]) for e, a in enumerate(arch) if self.ops[a] in PARAMETRIC}
        return [n for n, _ in self.named_parameters()
                if not n.startswith("cell.") or n.split(".")[1] in used]

    def num_params(self, arch: tuple[int, ...]) -> int:
        params = dict(self.named_parameters())
        return sum(params[n].numel() for n in self.active_names(arch))

    def fixed_arch(self) -> tuple[int, ...]:
        """The MAML baseline's architecture: every edge the first (largest-weight) parametric operation."""
        return tuple(0 for _ in self.edges)
