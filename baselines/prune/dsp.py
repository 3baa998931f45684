"""DSP, Dynamic Structure Pruning (Park et al., AAAI 2023): learned filter groups, then group channel pruning.

1. *Group learning* (the "prune" phase, ``--group-epochs`` epochs right before the prune): every
   convolution except the first and the residual shortcuts ("downsample") gets logits a ∈ R^{G×C_out}
   (zeros).  Each step draws a soft assignment P = gumbel_softmax(a / τ) over the G groups, and the loss
   gets λ·Σ_layers Σ_g s(P_g)·Σ_c ‖(P_g ⊙ W)[:, c]‖₂ with s(P_g) = (Σ_f P_{g,f}^½)²: a group lasso over
   the input channels within each soft group, which pulls each group towards its own input channels.
2. *Group channel pruning* (the prune point): filter f belongs to group argmax_g a_{g,f}; the input
   channel c of group g scores I_{g,c} = Σ_{f∈g} ‖W[f, c]‖², normalised within the group; in every
   group the channels whose cumulative share (lowest first) is below β are removed, β found by bisection
   so that ``--ratio`` of the grouped layers' weights go.  A group always keeps its strongest channel.
3. *Fine-tuning* with the masks applied; the deploy model packs each layer into G dense convolutions
   (gather the group's input channels, convolve with its filters, put the outputs back in filter
   order), which equals the masked layer and is physically smaller.

Simplified against the paper (see the README): the logits are trained by the run's own optimizer
with the weights (first order), not by a separate Adam through a one-step unrolled (DARTS-style)
update; no per-layer regulariser scale and no ramp of λ; β is solved for a weight (not FLOPs) share
once, not re-solved at restarts; no extra filter pruning of each residual block's last convolution;
no removal of dead channels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from baselines.prune import masks as M
from baselines.prune.pipeline import PipelineOptions, PruningPipeline

LOGITS = "dsp_logits"


@dataclass(frozen=True)
class DSPConfig(PipelineOptions):
    groups: int = 2  # G, filter groups per convolution (the paper: 2-4)
    lam: float = 5e-4  # λ of the group-lasso regulariser (the paper: 5e-4 for ResNet-56)
    tau: float = 0.5  # Gumbel-softmax temperature
    # Epochs of group learning right before the prune.  None: every pre-prune epoch with --pretrained, else half.
    group_epochs: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.groups < 2 or self.lam < 0 or self.tau <= 0 or (self.group_epochs is not None and self.group_epochs < 1):
            raise AdaGrowError("dsp needs --groups >= 2, --lam >= 0, --tau > 0 and --group-epochs >= 1")


def grouped_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """The convolutions DSP groups: all plain (ungrouped) ones but the first and the shortcuts."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    return {n: m for n, m in convs[1:] if "downsample" not in n}


def group_lasso(weight: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_g s(P_g) · Σ_c ‖(P_g ⊙ W)[:, c]‖₂ for one layer (P: G × C_out soft assignment)."""
    energy = weight.pow(2).sum((2, 3))  # (C_out, C_in): ‖W[f, c]‖² over the kernel
    norms = (p.pow(2) @ energy + 1e-12).sqrt()  # (G, C_in): ‖(P_g ⊙ W)[:, c]‖₂
    size = p.clamp_min(0).sqrt().sum(1).pow(2)  # s(P_g)
    return (size * norms.sum(1)).sum()


def channel_shares(weight: torch.Tensor, assign: torch.Tensor, groups: int) -> torch.Tensor:
    """I_{g,c} / Σ_c I_{g,c}: each input channel's share of its group's weight energy (G × C_in)."""
    energy = weight.detach().pow(2).sum((2, 3))
    one_hot = F.one_hot(assign, groups).T.to(energy.dtype)  # (G, C_out)
    score = one_hot @ energy
    return score / score.sum(1, keepdim=True).clamp_min(1e-30)


def removed_channels(shares: torch.Tensor, beta: float) -> torch.Tensor:
    """(G × C_in) True where the channel's cumulative share within its group, lowest first, is below β."""
    order = shares.argsort(dim=1, stable=True)
    cum = shares.gather(1, order).cumsum(1)
    gone = torch.zeros_like(shares, dtype=torch.bool)
    gone.scatter_(1, order, cum < beta)
    gone[:, -1:] &= gone.sum(1, keepdim=True) < shares.shape[1]  # never a whole group (cum reaches 1)
    return gone


def layer_mask(weight: torch.Tensor, assign: torch.Tensor, gone: torch.Tensor) -> torch.Tensor:
    """The weight mask: W[f, c] is pruned when channel c is removed from f's group."""
    return (~gone[assign])[:, :, None, None].expand_as(weight).to(weight.dtype)


def solve_masks(layers: dict[str, nn.Conv2d], assign: dict[str, torch.Tensor], groups: int,
                ratio: float, steps: int = 40) -> dict[str, torch.Tensor]:
    """Bisect β so that the masks remove ``ratio`` of the layers' weights (from below)."""
    shares = {n: channel_shares(m.weight, assign[n], groups) for n, m in layers.items()}
    total = sum(m.weight.numel() for m in layers.values())

    def masks_at(beta):
        return {n: layer_mask(m.weight, assign[n], removed_channels(shares[n], beta)) for n, m in layers.items()}

    lo, hi = 0.0, 1.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        removed = sum(int((mk == 0).sum()) for mk in masks_at(mid).values())
        lo, hi = (mid, hi) if removed <= ratio * total else (lo, mid)
    return masks_at(lo)


class GroupedConv(nn.Module):
    """A DSP layer packed: per group, a dense convolution of the group's filters over its kept channels."""

    def __init__(self, conv: nn.Conv2d, assign: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.branches = nn.ModuleList()
        filters = []
        for g in assign.unique().tolist():
            f = (assign == g).nonzero().flatten()
            c = mask[f].flatten(2).any(2).any(0).nonzero().flatten()
            branch = nn.Conv2d(len(c), len(f), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                               bias=conv.bias is not None, padding_mode=conv.padding_mode)
            with torch.no_grad():
                branch.weight.copy_((conv.weight * mask)[f][:, c])
                if conv.bias is not None:
                    branch.bias.copy_(conv.bias[f])
            self.branches.append(branch)
            self.register_buffer(f"channels{len(filters)}", c)
            filters.append(f)
        self.register_buffer("order", torch.cat(filters).argsort())  # outputs back to the filter order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x.index_select(1, getattr(self, f"channels{i}"))) for i, b in enumerate(self.branches)]
        return torch.cat(outs, 1).index_select(1, self.order)


class DSPPruning(PruningPipeline):
    name = "dsp"
    physical = True  # the deploy model is packed into grouped convolutions
    keeps_optimizer = True

    def __init__(self, cfg: DSPConfig):
        super().__init__(cfg)
        self.assign: dict[str, list[int]] = {}

    # ---- schedule: group learning is the "prune" phase ----------------------------------------------
    def default_finetune(self, epochs: int) -> int:
        return epochs // 2  # DSP must train (learn its groups) before it prunes, even from --pretrained

    def schedule(self, epochs: int) -> int:
        before = super().schedule(epochs)
        if before == 0:
            raise AdaGrowError("dsp learns its filter groups by training before the prune: give --finetune-epochs "
                               f"below the run's {epochs} epochs")
        return before

    def group_start(self) -> int:
        n = self.cfg.group_epochs
        if n is None:
            n = self.prune_after if self.cfg.pretrained else max(1, self.prune_after // 2)
        return max(0, self.prune_after - n)

    def pre_prune_phase(self, epoch: int) -> str:
        return "prune" if epoch >= self.group_start() else "pretrain"

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        self.prune_after = self.schedule(ctx.epochs)
        model = self.prunable(self.dense_model(ctx))  # grown CNNs learn their groups in the fused form
        if self.pruned:
            return M.restore_masks(model, list(self.assign))
        for m in grouped_layers(model).values():
            m.register_parameter(LOGITS, nn.Parameter(torch.zeros(self.cfg.groups, m.out_channels)))
        return model

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        if self.pruned or not model.training or self._epoch_phase != "prune":
            return None
        terms = [group_lasso(m.weight, F.gumbel_softmax(getattr(m, LOGITS) / self.cfg.tau, tau=1.0, dim=0))
                 for m in grouped_layers(model).values() if hasattr(m, LOGITS)]
        return self.cfg.lam * torch.stack(terms).sum() if terms else None

    @property
    def _epoch_phase(self) -> str:
        return getattr(self, "_phase_now", "pretrain")

    def phase(self, epoch: int) -> str:
        # The runner asks for the phase at the start of every epoch (also after a resume), and the
        # regulariser is on only in the group-learning epochs: remember which phase is running.
        self._phase_now = super().phase(epoch)
        return self._phase_now

    def prune(self, ctx: RunContext, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
        layers = grouped_layers(model)
        if not layers:
            raise AdaGrowError("dsp groups convolutions, and this model has none besides its first")
        assign = {n: getattr(m, LOGITS).detach().argmax(0) for n, m in layers.items()}
        for m in layers.values():
            del m._parameters[LOGITS]
        masks = solve_masks(layers, assign, self.cfg.groups, self.cfg.ratio)
        M.apply_masks(model, masks)
        self.assign = {n: a.tolist() for n, a in assign.items()}
        used = [len(set(a)) for a in self.assign.values()]
        return model, {"requested_sparsity": self.cfg.ratio, **M.mask_sparsity(model), "groups": self.cfg.groups,
                       "groups_used_mean": sum(used) / len(used)}

    def restore(self, model: nn.Module) -> nn.Module:  # build_model restores directly
        return M.restore_masks(model, list(self.assign))

    def deploy_model(self, model: nn.Module) -> nn.Module:
        deploy = copy.deepcopy(model)
        modules = dict(deploy.named_modules())
        for name, layer in M.masked_layers(deploy).items():
            packed = GroupedConv(layer, torch.tensor(self.assign[name], device=layer.weight.device), layer.weight_mask)
            parent, _, child = name.rpartition(".")
            setattr(modules[parent] if parent else deploy, child, packed)
        return deploy

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "assign": self.assign}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.assign = state["assign"]


METHODS.register("dsp", MethodEntry(DSPConfig, DSPPruning,
                                    "dynamic structure pruning: learned filter groups, group channel pruning, grouped convs"))
