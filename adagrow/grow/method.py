"""AdaGrow for CNNs as a :class:`~adagrow.engine.method.Method` (SPEC §3, Algorithm 3-1).

The runner trains; after every epoch this method decides whether a growth is due (every
``grow_interval`` epochs, alternating width and depth growth by ``pattern``), whether growth must stop
(``stop``), and grows the model in place.  Growth only adds modules, so the runner's
``transfer_state`` carries the optimizer state of every old parameter; ``optimizer_transfer="fresh"``
asks the runner for a stateless optimizer instead (Table 3-10).

Two variants: ``"thesis"`` (the text, default) and ``"released-code"`` (SPEC §3.9: signed mean γ,
blocks scored by their entry BN with the transition BN off the forward path, the block grown last time
skipped, width ratio 0.3, conv branches only from the "full" space, N(0, 0.2) on every new tensor, a
plateau rule that never fires).  The runner-side differences of the released code (cosine of lr to
1e-5 and of weight decay to 5e-6, RandAugment m9) are the recipe ``released-code``, which the variant
names as its default recipe (``AdaGrowConfig.default_recipe``, read by ``resolve_recipe``).

After a growth the runner validates once, then calls :meth:`AdaGrowMethod.recalibrate`: the BNs the
growth created still hold running statistics of mean 0 / variance 1, so eval-mode accuracy right after
a growth would measure those placeholders rather than the grown model; they are re-estimated on a few
training batches (``recalibrate_batches``) and the runner validates again.

Resume: ``state_dict()`` holds the model's structure (layers per block, every unit's branches), the
decision RNG's state, the stop rule's state and the event history; ``build_model()`` after
``load_state_dict()`` rebuilds the grown architecture for the runner to load the weights into.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from adagrow.engine.method import Method, ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.grow.init import local_learning
from adagrow.grow.ops import grow_depth, grow_width, undo
from adagrow.grow.policies import GrowthPolicy
from adagrow.grow.stop import PlateauRule, ReleasedPlateauRule, within_budget
from adagrow.grow.transformer import TransformerGrowConfig, TransformerGrowMethod
from adagrow.measure.profile import count_params
from adagrow.methods import METHODS, MethodEntry
from adagrow.models.arch import parse_arch
from adagrow.models.cnn import FAMILIES, GrowableCNN
from adagrow.models.cnn_count import fused_params
from adagrow.models.reparam import BRANCH_SPACES, TRAIN_FORMS, fuse_model

VARIANTS = ("thesis", "released-code")
# Datasets on which the thesis let each block grow at most once and stopped growth by that cap alone
# (Table 3-18: "MNIST: each block grows to at most one layer; other tasks stop automatically"; Table
# 3-22); ``layers_per_block_cap`` / ``stop`` set explicitly override this.
ONE_LAYER_PER_BLOCK = ("mnist",)
STOPS = ("auto", "target", "budget", "none")


@dataclass(frozen=True)
class AdaGrowConfig:
    """Every knob of AdaGrow for CNNs; defaults are the thesis' (Table 3-18).  ``None`` means
    "the variant's default" (thesis / released code differ there)."""

    family: str = "vgg"  # vgg | resnet | bottleneck | mobilenetv3 (the run's --model overrides it)
    blocks: int = 3  # 3 blocks (two down-samplings) or 4 (three)
    # "thesis" (the text) | "released-code" (SPEC §3.9; also picks its recipe)
    variant: Literal["thesis", "released-code"] = "thesis"
    seed_arch: str | None = None  # starting architecture; None = the empty seed "0-0-0(-0)"
    width_ratio: float | None = None  # share of units widened per width growth (thesis 0.7, code 0.3)
    grow_interval: int = 3  # epochs between growth events (Table 3-4)
    pattern: str = "W1D2"  # growth events cycle: 1 width then 2 depth (Table 3-8); e.g. "W3D1", "D1"
    # greedy (mean |γ|) | random | sequential (Table 3-6)
    depth_policy: Literal["greedy", "random", "sequential"] = "greedy"
    # random (with replacement) | random-no-replace | greedy (Table 3-7)
    branch_policy: Literal["random", "random-no-replace", "greedy"] = "random"
    init: str | None = None  # inherited | zeros | uniform | gaussian | gaussian-local | gaussian-global |
    #                          local-learning (Table 3-9); None: inherited (thesis), gaussian 0.2 (code)
    init_scale: float | None = None  # bound of "uniform", σ of "gaussian" (None: 0.1; code 0.2)
    local_learning_steps: int = 50  # batches of Adam on the new parameters alone ("local-learning")
    local_learning_lr: float = 1e-3  # Adam's learning rate for "local-learning"
    # "inherit" old momentum for old params | "fresh" (Table 3-10)
    optimizer_transfer: Literal["inherit", "fresh"] = "inherit"
    # when growth stops (Table 3-5): auto (EMA plateau), target, budget or none (None: auto, on MNIST none:
    # growth ends at the one-layer cap alone, Table 3-18)
    stop: Literal["auto", "target", "budget", "none"] | None = None
    target_arch: str | None = None  # for stop="target", e.g. "3-3-3"
    param_budget: int | None = None  # for stop="budget": fused ≤ B and un-fused ≤ 1.5·B
    threshold: float = 3.0  # auto stop: points of smoothed val accuracy a growth interval must gain
    tolerance: int = 1  # auto stop: misses allowed before growth stops
    ema: float = 0.6  # auto stop: EMA decay of val accuracy (the thesis gives none; code uses 0.95)
    layers_per_growth: int = 1  # layers inserted per depth growth (Table 3-2)
    max_branch_kernel: int | None = None  # None: each unit's own kernel; 5 enables 3×5 / 5×3 / pool5 (Fig. 3-5)
    # "thesis" (Fig. 3-5) | "full" (every odd kh×kw); None: thesis, code full
    branch_space: Literal["thesis", "full"] | None = None
    layers_per_block_cap: int | None = None  # None: 1 on MNIST (as the thesis), else no cap
    # Growth may happen only before this fraction of the epoch budget; the rest fine-tunes the grown
    # model (Algorithm 3-1's M epochs).  1.0: whenever the stop rule allows (the thesis).
    grow_until: float = 1.0
    # Training batches on which the BN running statistics of the modules a growth created are
    # re-estimated before the post-growth validation is repeated; 0 disables.
    recalibrate_batches: int = 20
    # Beyond the thesis: "orepa" trains each unit with its branches folded into one kernel at every step
    # (branch BNs as scales, one BN after the sum; adagrow.models.reparam), at about the plain model's cost.
    train_form: Literal["bn", "orepa"] = "bn"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise AdaGrowError(f"unknown AdaGrow variant {self.variant!r}; known: {', '.join(VARIANTS)}")
        if self.stop is not None and self.stop not in STOPS:
            raise AdaGrowError(f"unknown stop rule {self.stop!r}; known: {', '.join(STOPS)}")
        if self.stop == "target" and not self.target_arch:
            raise AdaGrowError("stop='target' needs target_arch, e.g. '3-3-3'")
        if self.stop == "budget" and not self.param_budget:
            raise AdaGrowError("stop='budget' needs param_budget (fused parameters)")
        if self.optimizer_transfer not in ("inherit", "fresh"):
            raise AdaGrowError("optimizer_transfer must be 'inherit' or 'fresh'")
        if self.blocks not in (3, 4):
            raise AdaGrowError("blocks must be 3 or 4")
        if self.grow_interval < 1:
            raise AdaGrowError("grow_interval must be at least 1")
        if not 0.0 < self.grow_until <= 1.0:
            raise AdaGrowError("grow_until must be in (0, 1]")
        if self.branch_space is not None and self.branch_space not in BRANCH_SPACES:
            raise AdaGrowError(f"unknown branch space {self.branch_space!r}; known: {', '.join(BRANCH_SPACES)}")
        if self.recalibrate_batches < 0:
            raise AdaGrowError("recalibrate_batches must be 0 (off) or more")
        if self.train_form not in TRAIN_FORMS:
            raise AdaGrowError(f"unknown train form {self.train_form!r}; known: {', '.join(TRAIN_FORMS)}")
        parse_pattern(self.pattern)

    @property
    def released(self) -> bool:
        return self.variant == "released-code"

    @property
    def default_recipe(self) -> str | None:
        """The recipe this configuration runs under unless one is named (``resolve_recipe``)."""
        return "released-code" if self.released else None

    def stop_rule(self, dataset: str) -> str:
        """The stopping rule in force on ``dataset`` (``stop=None`` depends on it)."""
        if self.stop is not None:
            return self.stop
        return "none" if dataset in ONE_LAYER_PER_BLOCK else "auto"

    def policy(self) -> GrowthPolicy:
        """The growth policy this configuration implies."""
        target = parse_arch(self.target_arch) if self.stop == "target" else None
        return GrowthPolicy(
            depth_policy=self.depth_policy,
            branch_policy=self.branch_policy,
            width_ratio=self.width_ratio if self.width_ratio is not None else (0.3 if self.released else 0.7),
            layers_per_growth=self.layers_per_growth,
            init=self.init or ("gaussian" if self.released else "inherited"),
            init_scale=self.init_scale if self.init_scale is not None else (0.2 if self.released else 0.1),
            signed_importance=self.released,
            entry_bn_only=self.released,
            avoid_last_block=self.released,
            conv_branches_only=self.released,
            layers_per_block_cap=self.layers_per_block_cap,
            max_depths=target,
        )


def parse_pattern(pattern: str) -> list[str]:
    """``"W1D2"`` -> ``["width", "depth", "depth"]``."""
    parts = re.findall(r"([WD])(\d+)", pattern.upper())
    if not parts or "".join(f"{k}{n}" for k, n in parts) != pattern.upper() or any(int(n) == 0 for _, n in parts):
        raise AdaGrowError(f"malformed growth pattern {pattern!r}; expected e.g. 'W1D2', 'W3D1' or 'D1'")
    return [("width" if k == "W" else "depth") for k, n in parts for _ in range(int(n))]


class AdaGrowMethod(Method):
    """Grow a CNN during training (see module docstring)."""

    name = "adagrow"

    def __init__(self, config: AdaGrowConfig | None = None):
        self.config = config or AdaGrowConfig()
        self.schedule = parse_pattern(self.config.pattern)
        self.model: GrowableCNN | None = None
        self.events: list[dict[str, Any]] = []
        self.growth_index = 0  # growth events due so far (indexes the pattern)
        self.stopped_at: int | None = None  # epoch (1-based) after which growth stopped
        self.stop_reason: str | None = None
        self.plateau = (ReleasedPlateauRule() if self.config.released
                        else PlateauRule(self.config.threshold, self.config.tolerance, self.config.ema))
        self.stop = self.config.stop or "auto"  # the rule in force; build_model settles it per dataset
        self._pending: dict[str, Any] | None = None
        self._new_bns: list[nn.BatchNorm2d] = []  # created by the last growth, for recalibrate()

    # ----------------------------------------------------------------------------- model
    def _family(self, ctx: RunContext) -> str:
        family = ctx.config.model or self.config.family
        if family not in FAMILIES:
            raise AdaGrowError(f"AdaGrow for CNNs has no family {family!r}; known: {', '.join(FAMILIES)}")
        return family

    def build_model(self, ctx: RunContext) -> nn.Module:
        """The seed model, or (after ``load_state_dict``) the saved grown architecture."""
        cfg = self.config
        policy = cfg.policy()
        self.stop = cfg.stop_rule(ctx.config.dataset)
        if cfg.layers_per_block_cap is None and ctx.config.dataset in ONE_LAYER_PER_BLOCK:
            policy = dataclasses.replace(policy, layers_per_block_cap=1)
        if self._pending is not None:
            model = GrowableCNN.from_structure(self._pending["structure"], policy, ctx.config.seed)
            model.rng.setstate(_as_rng_state(self._pending["rng"]))
            model.last_grown_block = self._pending["last_grown_block"]
        else:
            seed_arch = cfg.seed_arch or "-".join(["0"] * cfg.blocks)
            model = GrowableCNN(
                self._family(ctx), seed_arch, ctx.num_classes, ctx.input_size[0], cfg.max_branch_kernel,
                transition_bn_on_path=not cfg.released, policy=policy, seed=ctx.config.seed,
                branch_space=cfg.branch_space or ("full" if cfg.released else "thesis"), train_form=cfg.train_form,
            )
            if cfg.stop == "target" and len(parse_arch(cfg.target_arch)) != len(model.blocks):
                raise AdaGrowError(f"target_arch {cfg.target_arch!r} does not have {len(model.blocks)} blocks")
        self.model = model
        return model

    # ----------------------------------------------------------------------------- growth loop
    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]) -> ModelChange | None:
        cfg = self.config
        self.model = model
        self.plateau.update(float(metrics["val_acc"]))
        due = (epoch + 1) % cfg.grow_interval == 0 and epoch + 1 < min(ctx.epochs, cfg.grow_until * ctx.epochs)
        if self.stopped_at is not None or not due:
            return None
        if self._should_stop(model):
            self._stop(epoch, self.stop_reason)
            return None
        kind = self.schedule[self.growth_index % len(self.schedule)]
        self.growth_index += 1
        params_before, arch_before = count_params(model), model.arch()
        old_ids = {id(p) for p in model.parameters()}
        old_modules = set(map(id, model.modules()))
        event = grow_depth(model) if kind == "depth" else grow_width(model)
        if event is None:  # nothing left to grow of this kind
            if kind == "depth":
                self._stop(epoch, "every block is full")
            return None
        if cfg.stop == "budget" and not within_budget(fused_params(model), count_params(model), cfg.param_budget):
            undo(model, event)
            self._stop(epoch, f"the next growth would exceed the budget of {cfg.param_budget:,} parameters")
            return None
        new_params = [p for p in model.parameters() if id(p) not in old_ids]
        self._new_bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in old_modules]
        if self.config.policy().init == "local-learning" and ctx.train_batches is not None:
            local_learning(model, new_params, ctx.train_batches(), cfg.local_learning_steps, cfg.local_learning_lr)
        event = {
            "epoch": epoch + 1,
            **event,
            "arch_before": arch_before,
            "params_before": params_before,
            "params_after": count_params(model),
            "fused_params_after": fused_params(model),
            "val_acc_before": float(metrics["val_acc"]),
        }
        self.events.append(event)
        if cfg.stop == "target" and model.depths == parse_arch(cfg.target_arch):
            self._stop(epoch, f"reached the target architecture {cfg.target_arch}")
        return ModelChange(model=model, event=event, inherit_optimizer=cfg.optimizer_transfer == "inherit")

    def recalibrate(self, ctx: RunContext, model: nn.Module) -> bool:
        """Re-estimate the running statistics of the BNs the last growth created (see module doc).

        Only those BNs run in train mode (the rest of the model in eval mode, so every other BN keeps
        its statistics and normalises as at evaluation); their running mean / variance become the
        plain average of ``recalibrate_batches`` batch statistics.  No gradient is taken."""
        bns, self._new_bns = self._new_bns, []
        if not bns or self.config.recalibrate_batches == 0 or ctx.train_batches is None:
            return False
        was_training = model.training
        momenta = [bn.momentum for bn in bns]
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
            bn.train()
        try:
            with torch.no_grad():
                for i, (x, _) in enumerate(ctx.train_batches()):
                    if i >= self.config.recalibrate_batches:
                        break
                    model(x)
        finally:
            for bn, momentum in zip(bns, momenta):
                bn.momentum = momentum
            model.train(was_training)
        return True

    def _should_stop(self, model: GrowableCNN) -> bool:
        cfg = self.config
        if self.stop == "auto" and self.plateau.miss_fires():
            self.stop_reason = (f"smoothed val accuracy gained less than {cfg.threshold} points "
                                f"{self.plateau.misses} times (tolerance {cfg.tolerance})")
            return True
        if cfg.stop == "target" and model.depths == parse_arch(cfg.target_arch):
            self.stop_reason = f"reached the target architecture {cfg.target_arch}"
            return True
        return False

    def _stop(self, epoch: int, reason: str | None) -> None:
        self.stopped_at, self.stop_reason = epoch + 1, reason

    # ----------------------------------------------------------------------------- reporting
    def deploy_model(self, model: nn.Module) -> nn.Module:
        """The fused model: every re-parameterisable unit folded into one conv with bias."""
        return fuse_model(model)

    def arch(self, model: nn.Module) -> str | None:
        return model.arch() if isinstance(model, GrowableCNN) else None

    def summary(self) -> dict[str, Any]:
        return {
            "growth_events": list(self.events),
            "arch": self.model.arch() if self.model is not None else None,
            "stopped_growing_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "plateau_gains": list(self.plateau.gains),
        }

    def state_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "structure": model.structure() if model is not None else None,
            "rng": model.rng.getstate() if model is not None else None,
            "last_grown_block": model.last_grown_block if model is not None else None,
            "events": list(self.events),
            "growth_index": self.growth_index,
            "stopped_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "plateau": self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state if state.get("structure") is not None else None
        self.events = list(state["events"])
        self.growth_index = state["growth_index"]
        self.stopped_at, self.stop_reason = state["stopped_at"], state["stop_reason"]
        self.plateau.load_state_dict(state["plateau"])


def _as_rng_state(state) -> tuple:
    """``random.Random.getstate()`` survives serialisation as nested lists; make it tuples again."""
    version, internal, gauss = state
    return version, tuple(internal), gauss


# One method name for users: CNN families use AdaGrowConfig, "vit" / "bert" the Transformer variant.
_TRANSFORMER = (TransformerGrowConfig, TransformerGrowMethod)
METHODS.register(
    "adagrow",
    MethodEntry(AdaGrowConfig, AdaGrowMethod, "AdaGrow: grow depth and re-parameterisable width during training",
                by_family={"vit": _TRANSFORMER, "bert": _TRANSFORMER}),
)
