"""The APS super-network and the plain network it chooses (Wang et al., NeurIPS 2020, "Revisiting
Parameter Sharing for Automatic Neural Channel Number Search"; second thesis, seeds/002).

A searchable layer keeps one meta-weight tensor M (rows = output channels).  Candidate width c_i takes
its weight as an affine transform of it, W_i = P_i M with P_i ∈ R^{c_i × rows}.  Two transforms are
the extremes the paper unifies:

* ordinal sharing, O_i = [I_{c_i} 0 …]: every candidate is the first c_i rows (slimmable networks);
* independent candidates, I_i: each candidate owns a block of rows no other candidate touches.

The level of sharing is measured from the transforms (:func:`sharing_level`): Σ_{i<j} ‖P_i P_jᵀ‖²_F,
normalised by its ordinal value Σ_{i<j} min(c_i, c_j): 1 for ordinal sharing, 0 for independent
candidates.  Two ways to move from one to the other during the search:

* learned transforms (APS-T, ``learned=True``): M has Σ c rows (room for disjoint blocks, as the
  authors' code sizes its meta-weights); P_i starts ordinal (plus 1e-3 noise that breaks the tie between
  identical columns, as the authors' code) and is learned by projected gradient descent on the
  differentiable penalty Σ_{a≠b} ⟨p_a, p_b⟩² over all columns of all transforms (:func:`transform_step`:
  the sharing measure between candidates, plus the off-diagonal of each P_iᵀP_i so a candidate's own
  channels stay distinct), every column renormalised to unit length after each step.  The task loss
  does not train P (the authors detach it), so the transforms move only under the measure's penalty;
* a fixed schedule (``learned=False``): M has ``max(c) + Σ c`` rows, the first ``max(c)`` ordinal,
  then one private block per candidate, and P_i(s) = s·O_i + (1 − s)·I_i with s annealed by a half
  cosine (:func:`annealed_sharing`; the level is s⁴).

Each candidate has its own BatchNorm (as slimmable networks, and the authors' code); a layer takes the
first channels of its input (its input width is the previous layer's choice), where the authors' code
also projects the input side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def stage_of(depths: Sequence[int]) -> list[int]:
    """The stage index of every searchable layer."""
    return [s for s, d in enumerate(depths) for _ in range(d)]


class PlainCNN(nn.Module):
    """The network the search chooses: conv3×3-BN-ReLU layers of the given widths, a 2×2 max-pool after
    every stage but the last, global average pooling and a linear classifier."""

    def __init__(self, widths: Sequence[int], depths: Sequence[int], in_chans: int, num_classes: int):
        super().__init__()
        if len(widths) != sum(depths):
            raise ValueError(f"{len(widths)} widths for {sum(depths)} layers")
        self.widths, self.depths = [int(w) for w in widths], tuple(depths)
        layers: list[nn.Module] = []
        cin, stages = in_chans, stage_of(depths)
        for i, w in enumerate(self.widths):
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i + 1 < len(stages) and stages[i + 1] != stages[i]:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class APSConv(nn.Module):
    """A searchable conv3×3-BN-ReLU: candidate widths as affine transforms of shared meta-weights."""

    def __init__(self, in_max: int, candidates: Sequence[int], learned: bool = False, seed: int = 0):
        super().__init__()
        self.candidates = sorted(int(c) for c in candidates)
        self.c_max = self.candidates[-1]
        self.learned = learned
        offsets = [self.c_max]
        for c in self.candidates[:-1]:
            offsets.append(offsets[-1] + c)
        self.offsets = offsets  # first row of each candidate's private block (fixed schedule)
        self.columns = [sum(self.candidates[:i]) for i in range(len(self.candidates))]  # P_i's first column
        rows = sum(self.candidates) if learned else self.c_max + sum(self.candidates)
        if learned:  # [rows, Σc]: candidate i's transform is the columns [columns[i], columns[i] + c_i)
            proj = torch.zeros(rows, sum(self.candidates))
            for c, first in zip(self.candidates, self.columns):
                proj[:c, first: first + c] = torch.eye(c)
            proj += 1e-3 * torch.randn(proj.shape, generator=torch.Generator().manual_seed(seed))
            self.register_buffer("proj", proj / proj.norm(dim=0, keepdim=True))
        self.meta = nn.Parameter(torch.empty(rows, in_max, 3, 3))
        nn.init.kaiming_normal_(self.meta, mode="fan_out", nonlinearity="relu")
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in self.candidates)
        self.sharing = 1.0  # s: 1 = ordinal sharing, 0 = independent candidates
        self.choice = len(self.candidates) - 1

    def transform(self, i: int) -> torch.Tensor:
        """The [c_i, rows] matrix that maps the meta-weights to candidate i: learned, or
        P_i = s·O_i + (1 − s)·I_i on the fixed schedule."""
        c, rows = self.candidates[i], self.meta.shape[0]
        if self.learned:
            return self.proj[:, self.columns[i]: self.columns[i] + c].t()
        p = torch.zeros(c, rows)
        p[:, :c] += self.sharing * torch.eye(c)
        p[:, self.offsets[i]: self.offsets[i] + c] += (1 - self.sharing) * torch.eye(c)
        return p

    def weight(self, i: int, cin: int | None = None) -> torch.Tensor:
        """P_i M for the first ``cin`` input channels, without building P_i (two slices)."""
        c, off, s = self.candidates[i], self.offsets[i], self.sharing
        m = self.meta if cin is None else self.meta[:, :cin]
        if self.learned:  # the transform is not trained by the task loss (the authors detach it too)
            return torch.einsum("cr,rikl->cikl", self.transform(i).detach(), m)
        if s == 1.0:
            return m[:c]
        if s == 0.0:
            return m[off: off + c]
        return s * m[:c] + (1 - s) * m[off: off + c]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight(self.choice, x.shape[1]), padding=1)
        return F.relu(self.bns[self.choice](y))


class SuperNet(nn.Module):
    """PlainCNN's layout with an :class:`APSConv` per layer; ``train_choices`` (one candidate index per
    layer) selects the sub-network a training step runs, ``eval_choices`` the one evaluated."""

    def __init__(self, candidates: Sequence[Sequence[int]], depths: Sequence[int], in_chans: int, num_classes: int,
                 learned: bool = False, seed: int = 0):
        super().__init__()
        self.depths, stages = tuple(depths), stage_of(depths)
        self.layers = nn.ModuleList()
        cin = in_chans
        for k, cands in enumerate(candidates):
            self.layers.append(APSConv(cin, cands, learned, seed=seed * 1000 + k))
            cin = max(cands)
        self.pool_after = {i for i in range(len(stages) - 1) if stages[i + 1] != stages[i]}
        self.head = nn.Linear(cin, num_classes)
        self.train_choices: list[int] = [len(c) - 1 for c in candidates]  # the sampled sub-network
        self.eval_choices: list[int] = list(self.train_choices)  # the controller's current favourite

    def set_sharing(self, s: float) -> None:
        for layer in self.layers:
            layer.sharing = float(s)

    def widths(self, choices: Sequence[int]) -> list[int]:
        return [layer.candidates[i] for layer, i in zip(self.layers, choices)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choices = self.train_choices if self.training else self.eval_choices
        for i, layer in enumerate(self.layers):
            layer.choice = choices[i]
            x = layer(x)
            if i in self.pool_after:
                x = F.max_pool2d(x, 2)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.linear(x, self.head.weight[:, : x.shape[1]], self.head.bias)


def sharing_level(layer: APSConv) -> float:
    """Σ_{i<j} ‖P_i P_jᵀ‖²_F over the layer's candidate pairs, divided by its value under ordinal sharing
    (Σ_{i<j} min(c_i, c_j)): 1 for ordinal sharing, 0 for independent candidates."""
    ps = [layer.transform(i) for i in range(len(layer.candidates))]
    pairs = [(i, j) for i in range(len(ps)) for j in range(i + 1, len(ps))]
    if not pairs:
        return 1.0
    overlap = sum(float((ps[i] @ ps[j].T).pow(2).sum()) for i, j in pairs)
    return overlap / sum(min(layer.candidates[i], layer.candidates[j]) for i, j in pairs)


def sharing_penalty(proj: torch.Tensor) -> torch.Tensor:
    """Σ_{a≠b} ⟨p_a, p_b⟩² over the columns of ``proj`` (every candidate's transform side by side)."""
    gram = proj.t() @ proj
    return gram.pow(2).sum() - gram.diagonal().pow(2).sum()


@torch.no_grad()
def transform_step(layer: APSConv, lr: float) -> None:
    """One projected gradient step of the learned transforms on :func:`sharing_penalty`: a gradient step,
    then every column back to unit length (the authors' "constraint" mode)."""
    with torch.enable_grad():
        proj = layer.proj.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(sharing_penalty(proj), proj)
    new = layer.proj - lr * grad
    layer.proj.copy_(new / new.norm(dim=0, keepdim=True).clamp_min(1e-12))


def annealed_sharing(progress: float, final: float = 0.0) -> float:
    """APS-T's schedule: s = 1 at the start of the search, ``final`` at its end, a half cosine between."""
    progress = min(max(progress, 0.0), 1.0)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
