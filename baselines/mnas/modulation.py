"""Transferable knowledge modulation: the task embedding tailors the shared meta-weights to one task.

M-NAS (Fig. 1 b) tailors "the globally shared meta-parameters associated with alpha_i, w~(alpha_i), to a
specific task w~_i", and the inner loop then takes its gradient steps from w~_i (Fig. 1 c).  So the
modulation acts on the *weights* of the architecture's operations and the inner loop adapts the
modulated weights.  Two forms, chosen by ``--modulation``:

``weight`` (default, the seed's): every kernel the architecture uses — a conv's W (C_out, C_in, k, k)
or a linear layer's W (out, in) — is multiplied per task by a factor per output and per input channel,

    W~_task[o, i, ...] = W[o, i, ...] * (1 + a_task[o]) * (1 + b_task[i]),

where (a, b) of each (edge, operation) come from the embedding through one linear map (zero at
initialisation, so training starts from the plain meta-weights).  The factorised form is our choice
(the paper's text we hold does not give the parametrisation); a full per-element factor would need
C_out * C_in * k * k outputs per kernel.  In a conv followed by batch-statistics BatchNorm the
output-channel factor ``a`` cancels in the forward pass (up to its sign and BN's epsilon) but still sets
each channel's step size in the inner loop (a scaled kernel gets a gradient scaled by 1 / (1 + a)); the
input-channel factor ``b`` changes which features the kernel mixes.  The stem and the head are shared
by every architecture, not "associated with alpha", and are not modulated.

``film``: a per-channel scale and shift of the cell's output (FiLM, Perez et al. 2018), the project's
earlier form.  It is not the seed's: for a positive scale it equals re-weighting the *head's* input
columns and shifting its bias, so it tailors the head, not the cell's kernels (docs/methods/mnas.md).

Both return ``(params, film)`` for :func:`baselines.mnas.maml.adapt`: the weight form returns modulated
parameters and no FiLM; the FiLM form returns the parameters unchanged and the (scale, shift) pair.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.mnas.supernet import PARAMETRIC, SuperNet


def modulate_weight(weight: torch.Tensor, out_factor: torch.Tensor, in_factor: torch.Tensor) -> torch.Tensor:
    """``weight * (1 + out_factor)[o] * (1 + in_factor)[i]`` for a (out, in, ...) kernel."""
    tail = (1,) * (weight.dim() - 2)
    return weight * (1 + out_factor).view(-1, 1, *tail) * (1 + in_factor).view(1, -1, *tail)


def _kernel_name(key: str) -> str:
    """The parameter name of an operation's kernel (the first layer of its ``nn.Sequential``)."""
    return f"cell.{key}.0.weight"


class WeightModulation(nn.Module):
    """Embedding -> per-task factors of every parametric operation's kernel (identity at initialisation)."""

    def __init__(self, embed_dim: int, net: SuperNet):
        super().__init__()
        self.slices: dict[str, tuple[int, int, int]] = {}  # kernel name -> (start, out channels, in channels)
        start = 0
        for key, module in net.cell.items():
            out_ch, in_ch = module[0].weight.shape[:2]
            self.slices[_kernel_name(key)] = (start, out_ch, in_ch)
            start += out_ch + in_ch
        self.linear = nn.Linear(embed_dim, start)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, embedding: torch.Tensor, params: dict[str, torch.Tensor], net: SuperNet, arch: tuple[int, ...]):
        factors = self.linear(embedding)
        used = {_kernel_name(net.key(e, net.ops[a])) for e, a in enumerate(arch) if net.ops[a] in PARAMETRIC}
        tailored = dict(params)
        for name in used:
            start, out_ch, in_ch = self.slices[name]
            tailored[name] = modulate_weight(params[name], factors[start:start + out_ch],
                                             factors[start + out_ch:start + out_ch + in_ch])
        return tailored, None


class FilmModulation(nn.Module):
    """Embedding -> (scale, shift) per channel of the cell's output; starts at the identity."""

    def __init__(self, embed_dim: int, net: SuperNet):
        super().__init__()
        self.linear = nn.Linear(embed_dim, 2 * net.head.in_features)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, embedding: torch.Tensor, params: dict[str, torch.Tensor], net: SuperNet, arch: tuple[int, ...]):
        scale, shift = self.linear(embedding).chunk(2)
        return params, (scale, shift)


def build_modulation(kind: str, embed_dim: int, net: SuperNet) -> nn.Module | None:
    """The modulation ``--modulation`` names; None for ``none`` (the shared meta-weights as they are)."""
    return {"weight": WeightModulation, "film": FilmModulation}[kind](embed_dim, net) if kind != "none" else None
