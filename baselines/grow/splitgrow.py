"""SplitGrow = variance-transfer growing (Yuan, Savarese, Maire, NeurIPS 2023) on the harness
(research/growing-peers.md §3, §7).

*Where*: every layer widens at once.  Each block's width starts at ``seed_fraction`` (¼) of its final
width C (rounded to an even count) and grows C_{t+1} = C_t + round₂(``rate``·C_t) (even steps, ×1.2),
capped at C; the layers inside a block (bottleneck reduce, MobileNetV3 expansion and SE) follow their
block's width.  *When*: stage lengths grow geometrically, T₀ = ``first_stage_epochs`` (8), T_{t+1} =
T_t·(1 + ``stage_growth``); when the stages do not fit in the epoch budget they are shrunk in proportion
(the last, full-width stage included), so all of them fit; ``grow_interval`` gives fixed intervals
instead (the paper: about as good).

*How* (function-preserving, :func:`widen`): new units come in twin pairs with the same fan-in V
and opposite fan-out [Z, −Z] (an odd unit left over gets zero fan-out), so the next layer's input is
unchanged; V, Z ~ N(0, 1/C_in²) (μP-style, C_in the layer's new input channels; for a depthwise
conv, its kernel area).  Old weights of every
conv followed by a BN are multiplied by c = C_in,t / C_in,t+1 (variance transfer) and that BN's running
mean by c and running variance to c²(σ² + ε) − ε, which keeps the eval-mode output exact (the paper:
σ² by c²).  The head and the SE gate conv have no BN after them, so their old weights are left alone.
*Learning rate* (the paper's adaptation): the weights are partitioned by the growth that added
them, W = {W₀, W_Δ1, …, W_ΔT}; the seed's entries keep η₀ and the entries added at growth t train at
η_t = η₀·‖W_Δt‖_F / ‖W₀‖_F from then on (η₀: the run's scheduled lr at each step).  The ratio is taken
layer by layer (W₀: the layer's weight at the seed, at initialisation; W_Δt: the entries it gained at
growth t, as initialised), once, when the part is added.  Each weight tensor carries a mask of these
ratios entry by entry (``lr_mask``) and the optimizer scales each entry's step by it
(:func:`adagrow.engine.optim.scale_updates`: exactly a per-part learning rate for SGD with momentum
and weight decay, Adam and AdamW).  BN parameters and biases keep η₀.  μP's per-layer multipliers
and the batch-size adaptation are not implemented.  Depth does not grow (the paper has none): the
architecture is ``arch``.

*Parameter cap* (``max_params``, beside the paper: the issue-19 comparison at AdaGrow's size): a
growth is made only if the widened model has at most ``max_params`` fused (deploy) parameters, the
count of the record's ``params`` (:mod:`baselines.grow.common`).  When the step that is due does not
fit, the model takes the widest *partial step* that fits and growth ends: the block widths
C_t + round₂(j/J·(C_{t+1} − C_t)), j < J, J = the largest block's step in channel pairs (every
block the same fraction of its own step, even counts).  Why not simply stop at the last whole step:
parameters grow with the square of the width, so one ×1.2 step is about ×1.44 parameters and
stopping short would leave the model up to ~30 % below the cap, which defeats a comparison at equal
size; a partial step is the same function-preserving :func:`widen` (it accepts any wider widths),
with its own learning-rate part like any other growth.  Its event says ``"partial": true``.  Steps
that a short budget puts on one epoch are taken up to the last whole one that fits, then the partial
step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from adagrow.models.arch import parse_arch
from adagrow.models.cnn import GrowableCNN, family_spec
from adagrow.models.reparam import RepUnit
from baselines.grow.common import GrowingBaseline, adagrow_config, check_common, growth_record, snapshot


def round2(x: float) -> int:
    """Round to the nearest even integer (halves up)."""
    return 2 * math.floor(x / 2 + 0.5)


def width_steps(final: int, seed_fraction: float = 0.25, rate: float = 0.2) -> list[int]:
    """C₀ = round₂(C/4) (at least 2), then C_{t+1} = C_t + round₂(rate·C_t) (at least 2 more), capped at C."""
    widths = [min(final, max(2, round2(final * seed_fraction)))]
    while widths[-1] < final:
        widths.append(min(final, widths[-1] + max(2, round2(rate * widths[-1]))))
    return widths


@dataclass(frozen=True)
class SplitGrowConfig:
    family: str = "resnet"  # vgg | resnet | bottleneck | mobilenetv3 (the run's --model overrides it)
    blocks: int = 3  # 3 or 4 blocks
    arch: str | None = None  # layers per block (fixed); None: 2 per block ("2-2-2")
    seed_fraction: float = 0.25  # C₀ = C/4
    rate: float = 0.2  # ×1.2 per growth, rounded to even counts
    first_stage_epochs: float = 8.0  # T₀
    stage_growth: float = 0.2  # T_{t+1} = T_t·(1 + stage_growth)
    grow_interval: int | None = None  # fixed epochs between growths instead of geometric stages
    lr_adaptation: bool = True  # the entries added at growth t train at η₀‖W_Δt‖/‖W₀‖ (per layer)
    # most fused (deploy) parameters after a growth, counted as the record's params; the last step
    # is cut to the widest that fits, then growth ends; None: no cap
    max_params: int | None = None

    def __post_init__(self):
        check_common(self.family, self.blocks, self.arch, "arch", self.max_params)
        if not 0.0 < self.seed_fraction <= 1.0:
            raise AdaGrowError("seed_fraction must be in (0, 1]")
        if self.rate <= 0 or self.first_stage_epochs <= 0 or self.stage_growth < 0:
            raise AdaGrowError("rate and first_stage_epochs must be above 0, stage_growth at least 0")
        if self.grow_interval is not None and self.grow_interval < 1:
            raise AdaGrowError("grow_interval must be at least 1")

    @property
    def depths(self) -> tuple[int, ...]:
        return parse_arch(self.arch) if self.arch else (2,) * self.blocks

    def schedule(self, family: str) -> list[tuple[int, ...]]:
        """Block widths at each step: [seed, ..., final]; blocks at their final width wait for the others."""
        spec = family_spec(family)
        finals = spec.widths3 if self.blocks == 3 else spec.widths4
        per_block = [width_steps(c, self.seed_fraction, self.rate) for c in finals]
        n = max(len(w) for w in per_block)
        return [tuple(w[min(t, len(w) - 1)] for w in per_block) for t in range(n)]

    def growth_epochs(self, growths: int, epochs: int) -> list[int]:
        """The epoch (1-based) after which each growth happens, non-decreasing, all before the last epoch."""
        if self.grow_interval is not None:
            return [min(self.grow_interval * (k + 1), epochs - 1) for k in range(growths)]
        lengths = [self.first_stage_epochs * (1 + self.stage_growth) ** t for t in range(growths + 1)]
        scale = min(1.0, epochs / sum(lengths))
        ends = [scale * sum(lengths[: k + 1]) for k in range(growths)]
        return [min(max(1, round(e)), epochs - 1) for e in ends]


# ---------------------------------------------------------------------------------------------- widening
def _pairs(count: int, shape: tuple[int, ...], std: float, gen: torch.Generator, sign: bool) -> torch.Tensor:
    """``count`` slices along dim 0 in twin pairs: (X, X) for fan-in, (Z, −Z) for fan-out (``sign``);
    an odd last slice is a fresh draw (fan-in) or zero (fan-out)."""
    half = torch.randn((count + 1) // 2, *shape, generator=gen, dtype=torch.float64) * std
    second = -half if sign else half
    out = torch.stack([half, second], 1).reshape(-1, *shape)[:count]
    if sign and count % 2:
        out[-1] = 0.0
    return out


@torch.no_grad()
def _widen_weight(new: torch.Tensor, old: torch.Tensor, c: float, gen: torch.Generator, depthwise: bool) -> None:
    """Fill ``new`` (out, in, ...) from ``old``: old·c top-left, ±Z fan-out of new inputs, twin fan-in rows."""
    o, i = old.shape[0], old.shape[1]
    std = 1.0 / (new[0, :, ...].numel() if depthwise else new.shape[1])  # 1/C_in (a depthwise conv: its kernel area)
    w = torch.zeros(new.shape, dtype=torch.float64)
    w[:o, :i] = old.double() * c
    if not depthwise and new.shape[1] > i:  # old outputs read the new inputs with cancelling twins
        z = _pairs(new.shape[1] - i, (o, *new.shape[2:]), std, gen, sign=True)
        w[:o, i:] = z.transpose(0, 1)
    if new.shape[0] > o:
        w[o:] = _pairs(new.shape[0] - o, tuple(new.shape[1:]), std, gen, sign=False)
    new.copy_(w.to(new))


@torch.no_grad()
def _widen_bn(new: nn.BatchNorm2d, old: nn.BatchNorm2d, c: float) -> None:
    """Old channels: γ, β as they were; statistics follow the input scaled by c (exactly, ε included).
    New channels keep γ = 1, β = 0, mean 0, variance 1 (identical for twins)."""
    n = old.num_features
    new.weight[:n] = old.weight
    new.bias[:n] = old.bias
    new.running_mean[:n] = old.running_mean * c
    new.running_var[:n] = (c * c * (old.running_var.double() + old.eps) - old.eps).clamp_min(0).to(old.running_var)
    new.num_batches_tracked.copy_(old.num_batches_tracked)


@torch.no_grad()
def widen(old_model: GrowableCNN, widths: tuple[int, ...], gen: torch.Generator
          ) -> tuple[GrowableCNN, dict[nn.Parameter, tuple[nn.Parameter, tuple[slice, ...]]], dict[str, float]]:
    """The model at ``widths`` computing the same function as ``old_model`` in eval mode.

    Returns the new model, the map of each new parameter to the old one it continues (old values in
    the leading slices, for the optimizer state), and the Frobenius norm of the entries each weight gained."""
    structure = {**old_model.structure(), "widths": list(widths)}
    new_model = GrowableCNN.from_structure(structure, old_model.policy).to(old_model.head.fc.weight)
    new_model.rng, new_model.last_grown_block = old_model.rng, old_model.last_grown_block
    old_modules = dict(old_model.named_modules())
    scale: dict[str, float] = {}  # BN name -> c of the conv that feeds it
    for name, module in new_model.named_modules():
        old = old_modules[name]
        if isinstance(module, RepUnit):
            c = 1.0 if module.groups > 1 else old.conv.in_channels / module.conv.in_channels
            _widen_weight(module.conv.weight, old.conv.weight, c, gen, depthwise=module.groups > 1)
            scale[f"{name}.bn"] = c
        elif isinstance(module, nn.Conv2d) and not name.endswith(".conv"):  # the SE gate's conv: no BN after
            _widen_weight(module.weight, old.weight, 1.0, gen, depthwise=False)
        elif isinstance(module, nn.Linear):
            _widen_weight(module.weight, old.weight, 1.0, gen, depthwise=False)
            module.bias.copy_(old.bias)
    for name, module in new_model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            _widen_bn(module, old_modules[name], scale.get(name, 1.0))
    old_params = dict(old_model.named_parameters())
    param_map, gained = {}, {}
    for name, p in new_model.named_parameters():
        q = old_params[name]
        slices = tuple(slice(0, n) for n in q.shape)
        param_map[p] = (q, slices)
        if p.dim() > 1 and p.shape != q.shape:
            mask = torch.ones(p.shape, dtype=torch.bool)
            mask[slices] = False
            gained[name] = float(p.detach().cpu()[mask].norm())
    return new_model, param_map, gained


def lr_mask(parts: list[tuple[tuple[int, ...], float]]) -> torch.Tensor:
    """Each entry's learning-rate multiplier: the ratio of the growth that added it (``parts``: the
    nested shapes, seed first, each with its ratio; the leading slices hold the older entries)."""
    mask = torch.full(parts[-1][0], parts[-1][1])
    for shape, ratio in reversed(parts[:-1]):
        mask[tuple(slice(0, n) for n in shape)] = ratio
    return mask


class SplitGrowMethod(GrowingBaseline):
    name = "splitgrow"

    def __init__(self, config: SplitGrowConfig | None = None):
        cfg = config or SplitGrowConfig()
        super().__init__(cfg, adagrow_config(cfg, seed_arch="-".join(map(str, cfg.depths))))
        self.step = 0  # index into the width schedule
        self.seed_norms: dict[str, float] = {}  # ‖W₀‖ of every weight at the seed
        # per weight: [(shape, ratio)] of the seed (ratio 1) and of each growth that widened it; the
        # entries inside a shape and outside the one before it were added by that growth
        self.lr_parts: dict[str, list[tuple[tuple[int, ...], float]]] = {}

    def build_model(self, ctx: RunContext) -> nn.Module:
        cfg = self.baseline_config
        self.widths = cfg.schedule(self._family(ctx))
        if self._pending is not None:
            model = super().build_model(ctx)  # the saved structure holds the widths
        else:
            model = GrowableCNN(self._family(ctx), cfg.depths, ctx.num_classes, ctx.input_size[0],
                                policy=self.config.policy(), seed=ctx.config.seed, widths=self.widths[0])
            self.seed_norms = {n: float(p.detach().norm()) for n, p in model.named_parameters() if p.dim() > 1}
            self.lr_parts = {n: [(tuple(p.shape), 1.0)] for n, p in model.named_parameters() if p.dim() > 1}
            self.check_seed_fits(model)
        self.model = model
        self._apply_lr_masks(model)
        return model

    def _apply_lr_masks(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            parts = self.lr_parts.get(name, [])
            if len(parts) > 1:
                p.lr_mask = lr_mask(parts)

    def _add_lr_parts(self, model: nn.Module, gained: dict[str, float]) -> None:
        """η_t/η₀ = ‖W_Δt‖/‖W₀‖ for the entries each weight gained (1 where either norm is 0, which
        would otherwise freeze the part or divide by zero)."""
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        for name, norm in gained.items():
            seed = self.seed_norms.get(name, 0.0)
            self.lr_parts.setdefault(name, []).append((shapes[name], norm / seed if seed > 0 and norm > 0 else 1.0))

    def within_cap(self, model: GrowableCNN, target: int) -> tuple[int, tuple[int, ...] | None]:
        """The schedule step the model may reach on the way to ``target`` and, when that is short of
        ``target``, the widest partial step after it that fits (None if none does); see the module doc."""
        if self.fits(model, widths=list(self.widths[target])):
            return target, None
        reach = next((t for t in range(target - 1, self.step, -1) if self.fits(model, widths=list(self.widths[t]))),
                     self.step)
        lo, hi = self.widths[reach], self.widths[reach + 1]
        pairs = max((b - a) // 2 for a, b in zip(lo, hi))

        def partial(j: int) -> tuple[int, ...]:
            return tuple(a + round2(j / pairs * (b - a)) for a, b in zip(lo, hi))

        # parameters rise with j; find the largest j < pairs that fits (j = 0: no partial step)
        fit, over = 0, pairs
        while over - fit > 1:
            mid = (fit + over) // 2
            fit, over = (mid, over) if self.fits(model, widths=list(partial(mid))) else (fit, mid)
        return reach, partial(fit) if fit > 0 else None

    def on_epoch_end(self, ctx: RunContext, epoch: int, model, metrics: dict[str, float]) -> ModelChange | None:
        cfg = self.baseline_config
        self.model = model
        when = cfg.growth_epochs(len(self.widths) - 1, ctx.epochs)
        target = sum(1 for e in when if e <= epoch + 1)  # a short budget may put several steps on one epoch
        if self.stopped_at is not None or target <= self.step:
            return None
        reach, partial = self.within_cap(model, target)
        widths = partial or self.widths[reach]
        if reach < target:
            self._stop(epoch, self.cap_reason)
            if widths == tuple(model.widths):
                return None  # not even a partial step fits: the model keeps its width
        before, widths_before = snapshot(model), model.widths
        gen = torch.Generator().manual_seed(model.rng.getrandbits(63))
        new_model, param_map, gained = widen(model, widths, gen)
        if cfg.lr_adaptation:
            self._add_lr_parts(new_model, gained)
            self._apply_lr_masks(new_model)
        self.step = reach
        ratios = [self.lr_parts[n][-1][1] for n in gained if cfg.lr_adaptation]
        event = growth_record(new_model, epoch, metrics, before, {
            "kind": "width", "where": "every layer", "what": f"widths {list(widths_before)} -> {list(new_model.widths)}",
            "widths": list(new_model.widths), "step": reach, **({"partial": True} if partial else {}),
            "lr_ratios": [min(ratios), max(ratios)] if ratios else None})  # of the parts this growth added
        self.events.append(event)
        self.model = new_model
        return ModelChange(model=new_model, event=event, param_map=param_map)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "widths": list(self.model.widths) if self.model is not None else None}

    def own_state(self) -> dict[str, Any]:
        return {"step": self.step, "seed_norms": dict(self.seed_norms),
                "lr_parts": {n: [[list(shape), r] for shape, r in parts] for n, parts in self.lr_parts.items()}}

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.seed_norms = dict(state["seed_norms"])
        self.lr_parts = {n: [(tuple(shape), r) for shape, r in parts] for n, parts in state["lr_parts"].items()}


METHODS.register("splitgrow", MethodEntry(SplitGrowConfig, SplitGrowMethod,
                                          "SplitGrow: function-preserving width growth, variance transfer (Yuan et al. 2023)"))
