"""DSP, Dynamic Structure Pruning (Park et al., AAAI 2023): learned filter groups, then group channel pruning.

1. *Group learning* (the "prune" phase, ``--group-epochs`` epochs right before the prune), as the
   reference's ``GroupWrapper`` (irishev/DSP ``dsp_module.py``) does it after every optimizer step:
   every convolution except the first and the residual shortcuts ("downsample") has logits
   a ∈ R^{G×C_out} (zeros).  The regulariser is R = Σ_g s(P_g)·Σ_c ‖(P_g ⊙ W)[:, c]‖₂ with
   s(P_g) = (Σ_f P_{g,f}^½)²: a group lasso over the input channels within each group.
   a. The logits take one Adam step (``--group-lr`` 1e-3, eps 1e-12, the method's own optimizer) down
      ∂R/∂a at a soft assignment P = gumbel_softmax(a / τ) drawn for the step.
   b. The weights then take the regulariser's step *outside the loss*, at the hard assignment
      (argmax of the new logits): W −= λ · lr_t · ramp_t · scale_l · ∂R/∂W, where lr_t is the run's
      learning rate of the step, ramp_t = (t+1)/T rises linearly over the T group-learning steps, and
      scale_l = √(in_l / 16·32·32) · k_l · (G / C_out)^1.5 (in_l: the layer's input size for one
      example, k_l its kernel size) makes the step comparable across layers.
   Without scale and ramp (and with λ·R in the loss) the term was 10⁶ times the task loss of a
   ResNet-50 and emptied a trained network in a few steps.
2. *Group channel pruning* (the prune point): filter f belongs to group argmax_g a_{g,f}; the input
   channel c of group g scores I_{g,c} = Σ_{f∈g} ‖W[f, c]‖², normalised within the group; in every
   group the channels whose cumulative share (lowest first) is below β are removed, β found by bisection
   so that ``--ratio`` of the grouped layers' weights go.  A group always keeps its strongest channel.
3. *Fine-tuning* with the masks applied; the deploy model packs each layer into G dense convolutions
   (gather the group's input channels, convolve with its filters, put the outputs back in filter
   order), which equals the masked layer and is physically smaller.

Simplified against the reference (see docs/methods/pruning.md): the logits' gradient is first order
(∂R/∂a at the weights after the step), not the reference's one-step unrolled (DARTS-style) update
through a virtual step on the same batch, which the runner's per-step hook (no batch, no optimizer)
cannot make; β is solved for a weight (not FLOPs) share once, not re-solved at restarts; no extra
filter pruning of each residual block's last convolution; no removal of dead channels.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.engine.optim import lr_at
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from baselines.prune import masks as M
from baselines.prune.pipeline import PipelineOptions, PruningPipeline, example_input

LOGITS = "dsp_logits"
REFERENCE_INPUT = 16 * 32 * 32  # the reference's unit of a layer's input size (16 channels of a CIFAR image)


@dataclass(frozen=True)
class DSPConfig(PipelineOptions):
    groups: int = 2  # G, filter groups per convolution (the paper: 2-4)
    lam: float = 5e-4  # λ of the group-lasso regulariser (the paper: 5e-4 for ResNet-56)
    tau: float = 0.5  # Gumbel-softmax temperature
    group_lr: float = 1e-3  # learning rate of the logits' Adam (the reference's group_optimizer_lr)
    # Epochs of group learning right before the prune.  None: every pre-prune epoch with --pretrained, else half.
    group_epochs: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if (self.groups < 2 or self.lam < 0 or self.tau <= 0 or self.group_lr <= 0
                or (self.group_epochs is not None and self.group_epochs < 1)):
            raise AdaGrowError("dsp needs --groups >= 2, --lam >= 0, --tau > 0, --group-lr > 0 and --group-epochs >= 1")


def grouped_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """The convolutions DSP groups: all plain (ungrouped) ones but the first and the shortcuts."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    return {n: m for n, m in convs[1:] if "downsample" not in n}


def group_lasso(weight: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_g s(P_g) · Σ_c ‖(P_g ⊙ W)[:, c]‖₂ for one layer (P: G × C_out soft assignment)."""
    energy = weight.pow(2).sum((2, 3))  # (C_out, C_in): ‖W[f, c]‖² over the kernel
    norms = (p.pow(2) @ energy + 1e-12).sqrt()  # (G, C_in): ‖(P_g ⊙ W)[:, c]‖₂
    size = p.clamp_min(1e-12).sqrt().sum(1).pow(2)  # s(P_g); clamped: the root's slope is infinite at 0
    return (size * norms.sum(1)).sum()


def penalty_grad(weight: torch.Tensor, assign: torch.Tensor, groups: int) -> torch.Tensor:
    """∂R/∂W at a hard assignment (the reference's ``calc_penalty_no_grad``): for filter f of group g
    and input channel c, n_g² · W[f, c] / (‖W_g[:, c]‖₂ + 1e-8), n_g the group's filter count
    (s(P_g) of a one-hot P) and W_g[:, c] channel c of the group's filters, kernel included."""
    one_hot = F.one_hot(assign, groups).T.to(weight.dtype)  # (G, C_out)
    norms = (one_hot @ weight.pow(2).sum((2, 3))).sqrt()  # (G, C_in)
    per_group = one_hot.sum(1, keepdim=True).pow(2) / (norms + 1e-8)
    return weight * per_group[assign][:, :, None, None]


@torch.no_grad()
def layer_scales(model: nn.Module, layers: dict[str, nn.Conv2d], example: torch.Tensor, groups: int) -> dict[str, float]:
    """The reference's per-layer scale of the regulariser's step: √(in / 16·32·32) · k · (G / C_out)^1.5,
    ``in`` the number of input values the layer sees for one example (``Hook`` in ``dsp_module.py``)."""
    sizes: dict[str, int] = {}
    handles = [m.register_forward_hook(lambda mod, args, out, name=name: sizes.__setitem__(name, args[0][0].numel()))
               for name, m in layers.items()]
    was_training = model.training
    try:
        model.eval()(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {name: math.sqrt(sizes[name] / REFERENCE_INPUT) * m.kernel_size[0] * (groups / m.out_channels) ** 1.5
            for name, m in layers.items()}


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
        self.scales: dict[str, float] = {}
        self._group_opt: torch.optim.Adam | None = None
        self._group_state: dict[str, Any] | None = None  # a resumed run's Adam state, loaded on first use
        self._steps_per_epoch = 0
        self._step = 0  # the run's global step, as the runner counts it (for its learning rate)
        self._phase_now = "pretrain"

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
            n = self.prune_after if self.starts_trained else max(1, self.prune_after // 2)
        return max(0, self.prune_after - n)

    def pre_prune_phase(self, epoch: int) -> str:
        return "prune" if epoch >= self.group_start() else "pretrain"

    def phase(self, epoch: int) -> str:
        # The runner asks for the phase at the start of every epoch (also after a resume): remember the
        # phase (group learning runs in "prune" epochs only) and where the run's step count stands.
        self._phase_now = super().phase(epoch)
        self._step = epoch * self._steps_per_epoch
        return self._phase_now

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        self.prune_after = self.schedule(ctx.epochs)
        recipe, steps = ctx.config.recipe, ctx.steps_per_epoch
        self._steps_per_epoch = steps
        # The run's learning rate at a step: the runner's own schedule, a pure function of the step.
        self._lr_args = dict(total_steps=ctx.epochs * steps, base_lr=recipe.lr,
                             warmup_steps=int(recipe.warmup_epochs * steps), min_lr=recipe.min_lr)
        model = self.prunable(self.dense_model(ctx))  # grown CNNs learn their groups in the fused form
        if self.pruned:
            return M.restore_masks(model, list(self.assign))
        layers = grouped_layers(model)
        self.scales = layer_scales(model, layers, example_input(ctx).to(next(model.parameters()).device),
                                   self.cfg.groups)
        for m in layers.values():
            # Trained by the method's own Adam, not the run's optimizer (which takes requires_grad only).
            m.register_parameter(LOGITS, nn.Parameter(torch.zeros(self.cfg.groups, m.out_channels), requires_grad=False))
        return model

    def after_step(self, model: nn.Module) -> None:
        if self.pruned or self._phase_now != "prune":
            return
        layers = {n: m for n, m in grouped_layers(model).items() if hasattr(m, LOGITS)}
        if layers:
            self._learn_groups(layers)
        self._step += 1

    def _learn_groups(self, layers: dict[str, nn.Conv2d]) -> None:
        logits = [getattr(m, LOGITS) for m in layers.values()]
        if self._group_opt is None:
            self._group_opt = torch.optim.Adam(logits, lr=self.cfg.group_lr, eps=1e-12)
            if self._group_state is not None:
                self._group_opt.load_state_dict(self._group_state)
                self._group_state = None
        # a. one Adam step of the logits down ∂R/∂a at a soft assignment drawn for this step
        with torch.enable_grad():
            free = [a.detach().requires_grad_() for a in logits]
            reg = sum(group_lasso(m.weight.detach(), F.gumbel_softmax(a / self.cfg.tau, tau=1.0, dim=0))
                      for a, m in zip(free, layers.values()))
            grads = torch.autograd.grad(reg, free)
        for a, g in zip(logits, grads):
            a.grad = g
        self._group_opt.step()
        for a in logits:
            a.grad = None
        # b. the regulariser's step on the weights at the hard assignment, scaled and ramped as the reference's
        t = self._step - self.group_start() * self._steps_per_epoch
        ramp = min(1.0, (t + 1) / max(1, (self.prune_after - self.group_start()) * self._steps_per_epoch))
        rate = self.cfg.lam * lr_at(self._step, **self._lr_args) * ramp
        with torch.no_grad():
            for name, m in layers.items():
                assign = getattr(m, LOGITS).argmax(0)
                m.weight.sub_(penalty_grad(m.weight, assign, self.cfg.groups), alpha=rate * self.scales[name])

    def prune(self, ctx: RunContext, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
        layers = grouped_layers(model)
        if not layers:
            raise AdaGrowError("dsp groups convolutions, and this model has none besides its first")
        assign = {n: getattr(m, LOGITS).detach().argmax(0) for n, m in layers.items()}
        spread = [float(getattr(m, LOGITS).std()) for m in layers.values()]  # the reference's stats(): 0 unlearned
        for m in layers.values():
            del m._parameters[LOGITS]
        self._group_opt = None
        masks = solve_masks(layers, assign, self.cfg.groups, self.cfg.ratio)
        M.apply_masks(model, masks)
        self.assign = {n: a.tolist() for n, a in assign.items()}
        used = [len(set(a)) for a in self.assign.values()]
        return model, {"requested_sparsity": self.cfg.ratio, **M.mask_sparsity(model), "groups": self.cfg.groups,
                       "groups_used_mean": sum(used) / len(used), "groups_used_min": min(used),
                       "group_logit_std": sum(spread) / len(spread)}

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
        group_opt = self._group_opt.state_dict() if self._group_opt is not None else self._group_state
        return {**super().state_dict(), "assign": self.assign, "group_optimizer": group_opt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.assign = state["assign"]
        self._group_state, self._group_opt = state.get("group_optimizer"), None


METHODS.register("dsp", MethodEntry(DSPConfig, DSPPruning,
                                    "dynamic structure pruning: learned filter groups, group channel pruning, grouped convs"))
