"""MoGrow = momentum growth from AutoProg (Li et al., CVPR 2022) on the harness (growing-peers.md §4, §7).

An exponential moving average of every parameter and buffer is updated after each optimizer step
(``ema_decay`` 0.9996; :meth:`MoGrowMethod.after_step`).  Depth grows in ``stages`` (4) equal stages
from half the target depth to the full target (per block: 2, 3, 3, 4 for a target of 4).  At each
growth the model first loads the EMA weights, then every block is rebuilt at its new depth from
in-place copies of its own layers (AutoProg's ``new_idx``, :func:`copy_index`: each old layer is
repeated ⌊d′/d⌋ times and the last d′ mod d of them once more, so 2 → 4 gives 0, 0, 1, 1, 2 → 3 gives
0, 1, 1 and 3 → 4 gives 0, 1, 2, 2); the EMA is grown the same way (it is the grown model's state).
The optimizer is rebuilt without state (AutoProg builds a fresh one); the harness' cosine keeps running.
BN running statistics of the whole grown model are then re-estimated on ``recalibrate_batches``
training batches.

Not implemented: AutoProg's search over depth / resolution (optional in the paper), and its resolution,
RandAugment and drop-path ramps (the harness keeps data and augmentation the same for every method).

*Parameter cap* (``max_params``, beside the paper: the issue-19 comparison at AdaGrow's size): a
stage's growth is made only if the model at the stage's depths has at most ``max_params`` fused
(deploy) parameters, the count of the record's ``params`` (:mod:`baselines.grow.common`); when it
does not fit, growth ends and the model keeps its depths (a stage grows every block at once, so the
capped model can sit up to one stage's layers below the cap; no partial stage is tried, since the
stages are the method's schedule).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from adagrow.models.arch import format_arch, parse_arch
from baselines.grow.common import GrowingBaseline, adagrow_config, batchnorms, check_common, growth_record, snapshot


@dataclass(frozen=True)
class MoGrowConfig:
    family: str = "resnet"  # vgg | resnet | bottleneck | mobilenetv3 (the run's --model overrides it)
    blocks: int = 3  # 3 or 4 blocks
    target_arch: str | None = None  # full depth; None: 4 layers per block ("4-4-4")
    stages: int = 4  # equal stages, depth rising linearly from half the target to the target
    grow_interval: int | None = None  # epochs per stage; None: the epoch budget / stages
    ema_decay: float = 0.9996  # decay of the parameters' EMA (updated every step; the model takes it at each growth)
    recalibrate_batches: int = 20  # BN statistics of the whole grown model, re-estimated before validation
    # most fused (deploy) parameters after a growth, counted as the record's params; a stage that would
    # pass it ends growth; None: no cap
    max_params: int | None = None

    def __post_init__(self):
        check_common(self.family, self.blocks, self.target_arch, "target_arch", self.max_params)
        if self.stages < 2:
            raise AdaGrowError("MoGrow needs at least 2 stages")
        if self.grow_interval is not None and self.grow_interval < 1:
            raise AdaGrowError("grow_interval must be at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise AdaGrowError("ema_decay must be in [0, 1)")
        if min(self.target) < 2:
            raise AdaGrowError(f"target_arch {self.target_arch!r}: every block needs at least 2 layers to start at half")

    @property
    def target(self) -> tuple[int, ...]:
        return parse_arch(self.target_arch) if self.target_arch else (4,) * self.blocks

    def depths_at(self, stage: int) -> tuple[int, ...]:
        """Layers per block in ``stage`` (0-based): linear from ⌈L/2⌉ to L, rounded half up."""
        out = []
        for full in self.target:
            half = math.ceil(full / 2)
            out.append(math.floor(half + (full - half) * stage / (self.stages - 1) + 0.5))
        return tuple(out)

    def boundaries(self, epochs: int) -> list[int]:
        """Epochs (1-based) after which stage k+1 begins, k = 0..stages-2."""
        if self.grow_interval is not None:
            return [self.grow_interval * k for k in range(1, self.stages)]
        return [round(epochs * k / self.stages) for k in range(1, self.stages)]


def copy_index(old: int, new: int) -> list[int]:
    """Which old layer each layer of a block grown from ``old`` to ``new`` layers copies, as AutoProg's
    ``new_idx`` (``prog/helpers.py``) maps them: every old layer ⌊new/old⌋ times, the last ``new mod old``
    old layers once more (2 -> 4: 0, 0, 1, 1; 2 -> 3: 0, 1, 1; 3 -> 4: 0, 1, 2, 2), so the extra copies
    go to the deep end of the block."""
    times, extra = divmod(new, old)
    return [i for i in range(old) for _ in range(times + (i >= old - extra))]


class MoGrowMethod(GrowingBaseline):
    name = "mogrow"

    def __init__(self, config: MoGrowConfig | None = None):
        cfg = config or MoGrowConfig()
        super().__init__(cfg, adagrow_config(cfg, seed_arch=format_arch(cfg.depths_at(0))))
        self.stage = 0
        self.ema: dict[str, torch.Tensor] | None = None
        self._pairs: list[tuple[torch.Tensor, nn.Module, str, bool]] | None = None  # EMA slot, owner, name, param?

    def build_model(self, ctx: RunContext) -> nn.Module:
        model = super().build_model(ctx)
        if self.ema is None:  # a fresh start; on resume the EMA comes from the checkpoint
            self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._pairs = None
        return model

    # ----------------------------------------------------------------------------- EMA
    def _bind(self, model: nn.Module) -> list[tuple[torch.Tensor, nn.Module, str, bool]]:
        """(EMA tensor, owning module, attribute, is parameter) for every state entry, EMA on the model's device."""
        pairs = []
        for mname, module in model.named_modules():
            for kind, table in ((True, module._parameters), (False, module._buffers)):
                for name, t in table.items():
                    if t is None:
                        continue
                    key = f"{mname}.{name}" if mname else name
                    self.ema[key] = self.ema[key].to(t.device)
                    pairs.append((self.ema[key], module, name, kind))
        return pairs

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """ema ← d·ema + (1 − d)·θ for floating tensors; counters are copied."""
        if self._pairs is None:
            self._pairs = self._bind(model)
        w = 1.0 - self.baseline_config.ema_decay
        floats, sources = [], []
        for ema, module, name, is_param in self._pairs:
            t = (module._parameters if is_param else module._buffers)[name]
            if ema.is_floating_point():
                floats.append(ema)
                sources.append(t.detach())
            else:
                ema.copy_(t)
        if floats:
            torch._foreach_lerp_(floats, sources, w)

    # ----------------------------------------------------------------------------- growth
    def on_epoch_end(self, ctx: RunContext, epoch: int, model, metrics: dict[str, float]) -> ModelChange | None:
        cfg = self.baseline_config
        self.model = model
        boundaries = cfg.boundaries(ctx.epochs)
        if (self.stopped_at is not None or self.stage >= len(boundaries) or epoch + 1 != boundaries[self.stage]
                or epoch + 1 >= ctx.epochs):
            return None
        depths = cfg.depths_at(self.stage + 1)
        if depths != model.depths and not self.fits(model, lambda twin: self.grow(twin, depths)):
            self._stop(epoch, self.cap_reason)  # the model stays in its stage
            return None
        self.stage += 1
        if depths == model.depths:
            return None
        before = snapshot(model)
        self.load_ema(model)
        grown = self.grow(model, depths)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}  # the EMA grows the same way
        self._pairs = None
        self._new_bns = batchnorms(model)
        event = growth_record(model, epoch, metrics, before, {
            "kind": "depth", "where": [f"block{s + 1}" for s in grown], "what": "in-place copies of neighbours",
            "stage": self.stage, "weights": "ema", "ema_decay": cfg.ema_decay})
        self.events.append(event)
        return ModelChange(model=model, event=event, inherit_optimizer=False)

    def load_ema(self, model: nn.Module) -> None:
        model.load_state_dict({k: self.ema[k] for k in model.state_dict()})  # copies across devices

    @staticmethod
    def grow(model, depths: tuple[int, ...]) -> list[int]:
        """Rebuild every block at ``depths`` from in-place copies of its layers; returns the blocks grown."""
        grown = []
        for stage, new in enumerate(depths):
            block = model.blocks[stage]
            old = len(block)
            if new == old:
                continue
            if old == 0 or new < old:
                raise AdaGrowError(f"MoGrow cannot grow block {stage + 1} from {old} to {new} layers")
            used, layers = set(), []
            for i in copy_index(old, new):
                layers.append(block[i] if i not in used else copy.deepcopy(block[i]))
                used.add(i)
            model.blocks[stage] = nn.Sequential(*layers)
            grown.append(stage)
        model.last_grown_block = grown[-1] if grown else model.last_grown_block
        return grown

    # ----------------------------------------------------------------------------- resume
    def own_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "ema": {k: v.detach().cpu().clone() for k, v in (self.ema or {}).items()}}

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.stage = state["stage"]
        self.ema = dict(state["ema"]) or None
        self._pairs = None


METHODS.register("mogrow", MethodEntry(MoGrowConfig, MoGrowMethod,
                                       "MoGrow: AutoProg's momentum growth, EMA weights and copied layers (Li et al. 2022)"))
