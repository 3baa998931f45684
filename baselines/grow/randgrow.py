"""RandGrow = p-AutoGrow (Wen et al., KDD 2020) on the harness (research/growing-peers.md §2, §7).

*Where*: round-robin over the stages (blocks) still growing; one layer (one residual block for
ResNets) appended at the end of the stage.  *When*: every ``grow_interval`` (K = 3) epochs.  *Stop*:
when a growth is due, the stage grown most recently stops for good if the validation metric (running
maximum, or an EMA with decay 0.95 that starts at 0, without bias correction, as AutoGrow's
``utils.ExponentialMovingAverage``) gained less than ``tau`` (0.05) points over the last ``window``
(J ≫ K) epochs, measured against 0 while fewer than J + 1 epochs have been seen (AutoGrow's
``delta`` on a short history); growth ends when every stage has stopped.  *Init* of the new layer,
as AutoGrow's ``load_all``: in a residual layer (ResNet, bottleneck, MobileNetV3) the initialiser acts
on its last BN's γ, β; a plain layer (VGG) keeps the model's default initialisation whatever the
initialiser (AutoGrow re-initialises nothing in its plain nets).  ``gauinit`` (default init, then that
γ, β ~ N(0, 1); AutoGrow's best), ``zeroinit`` (γ, β = 0: the residual block starts as the identity),
``adaminit`` (Adam, lr 1e-3, L2 5e-4, trains only that γ, β, epoch by epoch, until the training
accuracy of an epoch exceeds the one before the growth less 0.5 points, at most
``adam_init_epochs`` (10) epochs; ``adam_init_steps`` gives a fixed number of batches instead) or
``thesis`` (the thesis' own RandGrow: every new tensor ~ N(0, 0.2), plain layers included).
Optimizer state of old parameters is kept, new slots zero.

Standardised by the harness (README "Growing baselines"): AdaGrow's families and widths, the shared
recipe (cosine over the whole run; AutoGrow's constant lr plus 200 tail epochs is not used), the
epoch budget, and BN recalibration of the new layer before the post-growth validation.

*Parameter cap* (``max_params``, beside the paper: the issue-19 comparison at AdaGrow's size): when a
growth is due, the next stage in the round-robin grows only if the model with its new layer has at
most ``max_params`` fused (deploy) parameters, the count of the record's ``params``
(:mod:`baselines.grow.common`); a stage whose next layer does not fit is closed for good (in
``stopped_stages``, reason "parameter cap (N)" in ``stage_stop_reasons``) and the round-robin goes on
to the next stage, whose layer may be smaller; growth ends when no open stage fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from adagrow.engine.method import ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.grow.init import local_learning
from adagrow.grow.ops import grow_depth
from adagrow.grow.policies import room
from adagrow.methods import METHODS, MethodEntry
from adagrow.models.cnn_blocks import VGGLayer
from baselines.grow.common import GrowingBaseline, adagrow_config, check_common, growth_record, snapshot

INITS = ("gauinit", "zeroinit", "adaminit", "thesis")


@dataclass(frozen=True)
class RandGrowConfig:
    """p-AutoGrow's knobs; defaults are the paper's where the harness allows (module docstring)."""

    family: str = "resnet"  # vgg | resnet | bottleneck | mobilenetv3 (the run's --model overrides it)
    blocks: int = 3  # 3 or 4 blocks
    seed_arch: str | None = None  # None: one layer per stage, "1-1-1" (AutoGrow); the thesis' is "0-0-0"
    grow_interval: int = 3  # K: epochs between growths
    init: str = "gauinit"  # gauinit | zeroinit | adaminit | thesis (N(0, 0.2) on every new tensor)
    adam_init_epochs: int = 10  # adaminit: at most this many epochs of Adam on the new BN's γ, β alone
    adam_init_steps: int | None = None  # adaminit: a fixed number of batches instead (the harness' former 50)
    adam_init_lr: float = 1e-3  # adaminit: Adam's learning rate
    adam_init_weight_decay: float = 5e-4  # AutoGrow's local Adam
    stop: str = "auto"  # auto (per-stage τ / J rule) | none (grow until grow_until)
    stop_metric: str = "max"  # max (running maximum of val accuracy) | ema (EMA, decay ``ema``)
    ema: float = 0.95  # decay of the validation-accuracy EMA (stop_metric=ema)
    tau: float = 0.05  # points of validation accuracy a stage must gain over ``window`` epochs
    window: int = 12  # J ≫ K (AutoGrow: 200 on CIFAR for its open-ended schedule; the budget here is 100)
    max_layers_per_stage: int | None = None  # None: no cap
    grow_until: float = 1.0  # growth only before this fraction of the epochs
    recalibrate_batches: int = 20  # BN statistics of the new layer, re-estimated before validation
    # most fused (deploy) parameters after a growth, counted as the record's params; a stage whose next
    # layer would pass it stops; None: no cap
    max_params: int | None = None

    def __post_init__(self):
        check_common(self.family, self.blocks, self.seed_arch, max_params=self.max_params)
        if self.init not in INITS:
            raise AdaGrowError(f"unknown RandGrow init {self.init!r}; known: {', '.join(INITS)}")
        if self.stop not in ("auto", "none"):
            raise AdaGrowError("RandGrow stop must be 'auto' or 'none'")
        if self.stop_metric not in ("max", "ema"):
            raise AdaGrowError("stop_metric must be 'max' or 'ema'")
        if self.grow_interval < 1 or self.window < 1:
            raise AdaGrowError("grow_interval and window must be at least 1")
        if not 0.0 < self.grow_until <= 1.0:
            raise AdaGrowError("grow_until must be in (0, 1]")
        if not 0.0 <= self.ema < 1.0:
            raise AdaGrowError("ema must be in [0, 1)")
        if self.adam_init_epochs < 1 or (self.adam_init_steps is not None and self.adam_init_steps < 1):
            raise AdaGrowError("adam_init_epochs and adam_init_steps must be at least 1")


class RandGrowMethod(GrowingBaseline):
    name = "randgrow"

    def __init__(self, config: RandGrowConfig | None = None):
        cfg = config or RandGrowConfig()
        seed = cfg.seed_arch or "-".join(["1"] * cfg.blocks)
        thesis = {"init": "gaussian", "init_scale": 0.2} if cfg.init == "thesis" else {"init": "inherited"}
        super().__init__(cfg, adagrow_config(cfg, seed_arch=seed, depth_policy="sequential", **thesis))
        self.metric: list[float] = []  # smoothed validation accuracy after each epoch
        self.stopped_stages: dict[int, int] = {}  # stage -> epoch (1-based) after which it stopped
        self.stage_stop_reasons: dict[int, str] = {}  # stage -> why it stopped (τ rule or parameter cap)

    # ----------------------------------------------------------------------------- decisions
    def _smooth(self, acc: float) -> float:
        """AutoGrow's metrics: the running maximum starts at the first value, the EMA at 0."""
        cfg = self.baseline_config
        if cfg.stop_metric == "max":
            return max(self.metric[-1], acc) if self.metric else acc
        last = self.metric[-1] if self.metric else 0.0
        return cfg.ema * last + (1 - cfg.ema) * acc

    def _check_last_stage(self, epoch: int) -> None:
        """AutoGrow's stop: the stage grown most recently stops when the metric gained < τ over J epochs."""
        cfg, stage = self.baseline_config, self.model.last_grown_block
        if cfg.stop != "auto" or stage is None or stage in self.stopped_stages:
            return
        # a history shorter than the window is measured against 0, as AutoGrow's ``delta`` does
        start = self.metric[-1 - cfg.window] if len(self.metric) > cfg.window else 0.0
        if self.metric[-1] - start < cfg.tau:
            self.stopped_stages[stage] = epoch + 1
            self.stage_stop_reasons[stage] = f"gained less than {cfg.tau} points over {cfg.window} epochs"

    def _open_stages(self) -> list[int]:
        cap = self.baseline_config.max_layers_per_stage
        return [s for s in range(len(self.model.blocks))
                if s not in self.stopped_stages and room(self.model, self.model.policy, s) != 0
                and (cap is None or self.model.depths[s] < cap)]

    def next_stage(self) -> int | None:
        """Round-robin: the first open stage after the one grown last (stage 0 first)."""
        open_stages = self._open_stages()
        if not open_stages:
            return None
        last = -1 if self.model.last_grown_block is None else self.model.last_grown_block
        n = len(self.model.blocks)
        return min(open_stages, key=lambda s: (s - last - 1) % n)

    def next_stage_within_cap(self, epoch: int) -> int | None:
        """The next stage in the round-robin whose new layer keeps the model within ``max_params``;
        each stage passed over for the cap is closed for good (a layer only grows the model)."""
        while (stage := self.next_stage()) is not None:
            if self.fits(self.model, lambda twin, s=stage: twin.blocks[s].append(twin.new_layer(s))):
                return stage  # the twin appends what grow_depth(model, stage) appends
            self.stopped_stages[stage] = epoch + 1
            self.stage_stop_reasons[stage] = self.cap_reason
        return None

    def on_epoch_end(self, ctx: RunContext, epoch: int, model, metrics: dict[str, float]) -> ModelChange | None:
        cfg = self.baseline_config
        self.model = model
        self.metric.append(self._smooth(float(metrics["val_acc"])))
        due = (epoch + 1) % cfg.grow_interval == 0 and epoch + 1 < min(ctx.epochs, cfg.grow_until * ctx.epochs)
        if self.stopped_at is not None or not due:
            return None
        self._check_last_stage(epoch)
        closed = len(self.stopped_stages)
        stage = self.next_stage_within_cap(epoch)
        if stage is None:
            capped = any(self.stage_stop_reasons.get(s) == self.cap_reason for s in list(self.stopped_stages)[closed:])
            self._stop(epoch, self.cap_reason if capped
                       else "every stage stopped growing" if self.stopped_stages else "every stage is full")
            return None
        before = snapshot(model)
        event = grow_depth(model, stage=stage)
        layer = model.blocks[stage][-1]
        init = self._init_new_layer(ctx, model, layer, metrics)
        self._new_bns = [m for m in layer.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        event = growth_record(model, epoch, metrics, before, {**event, "init": cfg.init, **init,
                                                              "stopped_stages": dict(self.stopped_stages)})
        self.events.append(event)
        return ModelChange(model=model, event=event)

    def _init_new_layer(self, ctx: RunContext, model, layer, metrics: dict[str, float]) -> dict[str, Any]:
        """AutoGrow's initialisers act on a residual layer's last BN (bn2 of a basic block, bn3 of a
        bottleneck, the projection's BN of a MobileNetV3 layer); a plain layer keeps its default init.
        Returns what was done, for the growth record."""
        cfg = self.baseline_config
        if cfg.init == "thesis" or isinstance(layer, VGGLayer):
            return {"reinit": "every new tensor" if cfg.init == "thesis" else "none (plain layer: default init)"}
        bn = layer.units()[-1].bn
        if cfg.init == "gauinit":
            gen = torch.Generator().manual_seed(model.rng.getrandbits(63))
            with torch.no_grad():
                for p in (bn.weight, bn.bias):
                    p.copy_(torch.randn(p.shape, generator=gen).to(p))
        elif cfg.init == "zeroinit":
            with torch.no_grad():
                bn.weight.zero_()
                bn.bias.zero_()
        elif cfg.init == "adaminit" and ctx.train_batches is not None:
            return {"reinit": "last BN", "adam_init_batches": self._adam_init(ctx, model, bn, metrics)}
        return {"reinit": "last BN"}

    def _adam_init(self, ctx: RunContext, model, bn, metrics: dict[str, float]) -> int:
        """AutoGrow's AdamInit: epochs of Adam on the new γ, β until an epoch's training accuracy beats
        the last one before the growth less 0.5 points (at most ``adam_init_epochs``); or a fixed
        ``adam_init_steps`` batches.  Returns the batches trained."""
        cfg = self.baseline_config
        params = [bn.weight, bn.bias]
        train = dict(lr=cfg.adam_init_lr, weight_decay=cfg.adam_init_weight_decay)
        if cfg.adam_init_steps is not None:
            return local_learning(model, params, ctx.train_batches(), cfg.adam_init_steps, **train)
        epoch = max(1, ctx.steps_per_epoch)
        before = metrics.get("train_acc")  # the runner always reports it; without it the budget is used up
        until = None if before is None else (lambda acc: acc > before - 0.5)
        return local_learning(model, params, ctx.train_batches(), cfg.adam_init_epochs * epoch, **train,
                              every=epoch, until=until)

    # ----------------------------------------------------------------------------- record, resume
    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "stopped_stages": dict(self.stopped_stages),
                "stage_stop_reasons": dict(self.stage_stop_reasons)}

    def own_state(self) -> dict[str, Any]:
        return {"metric": list(self.metric), "stopped_stages": dict(self.stopped_stages),
                "stage_stop_reasons": dict(self.stage_stop_reasons)}

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.metric = list(state["metric"])
        self.stopped_stages = {int(k): v for k, v in state["stopped_stages"].items()}
        # checkpoints written before the reasons were kept have none
        self.stage_stop_reasons = {int(k): v for k, v in state.get("stage_stop_reasons", {}).items()}


METHODS.register("randgrow", MethodEntry(RandGrowConfig, RandGrowMethod,
                                         "RandGrow = p-AutoGrow: round-robin depth growth, per-stage stop (Wen et al. 2020)"))
