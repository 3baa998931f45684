"""AdaGrow for Transformers (thesis §3.4): grow a ViT or BERT from one layer with two heads.

Every ``grow_interval`` epochs one growth event happens, following ``pattern`` ("W2D1": two width
growths, then one depth growth, Table 3-14):

* width = one more attention head, widening the whole isotropic model (Table 3-12);
* depth = one new layer inserted after the most important layer, i.e. the one with the largest mean
  |γ| of its post-attention LayerNorm (``depth_policy="greedy"``; or ``first`` / ``last`` / ``random``,
  Table 3-11).

New values start from N(0, 0.1) (Table 3-15) and the optimizer is rebuilt inheriting the old state,
new slots zero (Table 3-16); the runner does that with the returned ``param_map``.  Growth stops by
the automatic rule (default: Table 3-18 stops every task but MNIST automatically, and the thesis'
grown Transformers are D3-D6, W384-W448, Tables 3-27 / 3-28), at the target architecture, at a
parameter budget, or with ``stop="none"`` at the caps alone (``max_heads``, ``max_layers``, which
every rule also respects); training then continues to the epoch budget (200 epochs, Table 3-18).

Every random decision draws from one generator seeded from the run seed, whose state is part of
``state_dict``: a resumed run grows exactly as an uninterrupted one.
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
from adagrow.grow.stop import PlateauRule
from adagrow.grow.transformer_ops import (
    ParamMap,
    check_scheme,
    deepen,
    fill_new_optimizer_slots,
    layer_importance,
    train_new_values,
    widen,
)
from adagrow.measure.profile import count_params
from adagrow.models.transformer import (
    FAMILIES,
    GrowableTransformer,
    TransformerSpec,
    build_transformer,
    make_spec,
    parse_arch,
)

DEPTH_POLICIES = ("greedy", "first", "last", "random")
STOP_RULES = ("none", "target", "budget", "auto")


@dataclass(frozen=True)
class TransformerGrowConfig:
    """AdaGrow-for-Transformers options; defaults are the thesis' best settings (Tables 3-11…3-16)."""

    family: Literal["vit", "bert"] = "vit"  # the Transformer (the run's --model overrides it)
    arch: str = "D1W128"  # the seed: 1 layer, 2 heads of 64
    grow_interval: int = 5  # epochs between growth events (Table 3-13)
    pattern: str = "W2D1"  # width:depth order of events (Table 3-14), e.g. "W1D1", "W1D2"
    depth_policy: Literal["greedy", "first", "last", "random"] = "greedy"  # greedy | first | last | random (Table 3-11)
    # LayerNorm scored by greedy: "norm2" (post-attention) | "norm1" (released code)
    importance_norm: Literal["norm2", "norm1"] = "norm2"
    init: str = "normal0.1"  # new values (Table 3-15): see adagrow.grow.transformer_ops, or "local_learning"
    local_learning_steps: int = 50  # Adam steps on new values only, for init="local_learning"
    optimizer_transfer: str = "inherit"  # "fresh" | "inherit" (new slots 0) | "inherit_<scheme>" (Table 3-16)
    # auto (EMA plateau, as the CNNs) | target | budget | none (caps only)
    stop: Literal["auto", "target", "budget", "none"] = "auto"
    target_arch: str | None = None  # stop="target": grow up to this architecture, e.g. "D4W384"
    max_heads: int = 12  # width cap: attention heads per layer
    max_layers: int = 12  # depth cap: encoder layers
    param_budget: int | None = None  # stop="budget": never grow beyond this many parameters
    # stop="auto" (adagrow.grow.stop.PlateauRule, shared with the CNN AdaGrow): minimum EMA val-acc
    # gain (points) between growths, misses allowed, EMA decay
    auto_threshold: float = 3.0  # stop=auto: minimum EMA val-acc gain (points) between growths
    auto_tolerance: int = 1  # stop=auto: growths allowed to miss the threshold
    auto_ema: float = 0.6  # stop=auto: decay of the val-acc EMA
    vocab_size: int | None = None  # BERT: filled from the text dataset's meta when None
    max_len: int | None = None  # BERT: filled from the text dataset's meta when None
    dropout: float = 0.0  # dropout in attention and MLP

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise AdaGrowError(f"unknown Transformer family {self.family!r}; known: {', '.join(FAMILIES)}")
        parse_arch(self.arch)
        if self.target_arch:
            parse_arch(self.target_arch)
        if self.stop == "target" and not self.target_arch:
            raise AdaGrowError("stop='target' needs target_arch, e.g. D4W384")
        if self.stop == "budget" and not self.param_budget:
            raise AdaGrowError("stop='budget' needs param_budget")
        if self.stop not in STOP_RULES:
            raise AdaGrowError(f"unknown stop rule {self.stop!r}; known: {', '.join(STOP_RULES)}")
        if self.depth_policy not in DEPTH_POLICIES:
            raise AdaGrowError(f"unknown depth policy {self.depth_policy!r}; known: {', '.join(DEPTH_POLICIES)}")
        if self.importance_norm not in ("norm1", "norm2"):
            raise AdaGrowError("importance_norm must be 'norm1' or 'norm2'")
        if self.grow_interval < 1:
            raise AdaGrowError("grow_interval must be at least 1")
        parse_pattern(self.pattern)
        if self.init != "local_learning":
            check_scheme(self.init)
        if self.optimizer_transfer not in ("fresh", "inherit"):
            if not self.optimizer_transfer.startswith("inherit_"):
                raise AdaGrowError(f"unknown optimizer_transfer {self.optimizer_transfer!r}; "
                                   "known: fresh, inherit, inherit_uniform<a>, inherit_normal<σ>")
            check_scheme(self.optimizer_transfer[len("inherit_"):])


def parse_pattern(pattern: str) -> list[str]:
    """``"W2D1"`` -> ``["W", "W", "D"]``."""
    parts = re.findall(r"([WD])(\d+)", pattern.upper())
    if not parts or "".join(f"{k}{n}" for k, n in parts) != pattern.upper() or all(int(n) == 0 for _, n in parts):
        raise AdaGrowError(f"malformed growth pattern {pattern!r}: expected e.g. W2D1")
    return [kind for kind, n in parts for _ in range(int(n))]


class TransformerGrowMethod(Method):
    """Grows a :class:`GrowableTransformer` during training (see the module docstring)."""

    name = "adagrow"

    def __init__(self, cfg: TransformerGrowConfig):
        self.cfg = cfg
        self.kinds = parse_pattern(cfg.pattern)
        self.spec: TransformerSpec | None = None
        self.events: list[dict[str, Any]] = []
        self.stopped: str | None = None  # why growth stopped, once it has
        self.plateau = PlateauRule(cfg.auto_threshold, cfg.auto_tolerance, cfg.auto_ema)  # stop="auto"
        self.generator: torch.Generator | None = None
        self._resumed = False
        self._pending_fill: ParamMap | None = None  # for after_optimizer_transfer

    # ----------------------------------------------------------------------------- model
    def build_model(self, ctx: RunContext) -> nn.Module:
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(0xADA6 + int(getattr(ctx.config, "seed", 0)))
        if self.spec is None:
            meta = getattr(ctx, "data_meta", None) or {}
            self.spec = make_spec(self.cfg.family, self.cfg.arch, ctx.num_classes, input_size=ctx.input_size,
                                  vocab_size=self.cfg.vocab_size or meta.get("vocab_size"),
                                  max_len=self.cfg.max_len or meta.get("max_len"), dropout=self.cfg.dropout)
        # On resume the weights come from the checkpoint: do not advance the saved generator.
        init_gen = torch.Generator().manual_seed(0) if self._resumed else self.generator
        return build_transformer(self.spec, init_gen).to(ctx.device)

    def arch(self, model: nn.Module) -> str | None:
        return model.spec.arch if isinstance(model, GrowableTransformer) else None

    # ---------------------------------------------------------------------------- growth
    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module,
                     metrics: dict[str, float]) -> ModelChange | None:
        if metrics.get("val_acc") is not None:
            self.plateau.update(metrics["val_acc"])
        due = (epoch + 1) % self.cfg.grow_interval == 0 and epoch + 1 < ctx.epochs
        if self.stopped or not due:
            return None
        if self.cfg.stop == "auto" and self.plateau.miss_fires():
            self.stopped = "auto"
            return None
        kind = self._next_kind(model.spec)
        if kind is None:
            self.stopped = "target" if self.cfg.stop == "target" else "caps"
            return None
        growth, where = self._grow(kind, model)
        if self.cfg.stop == "budget" and count_params(growth.model) > self.cfg.param_budget:
            self.stopped = "budget"
            return None
        if self.cfg.init == "local_learning" and ctx.train_batches is not None:
            train_new_values(growth.model, growth.new_masks, ctx.train_batches(), self.cfg.local_learning_steps)
        self.spec = growth.model.spec
        event = {"kind": "width" if kind == "W" else "depth", "where": where,
                 "arch_before": model.spec.arch, "arch": self.spec.arch,
                 "params_before": count_params(model), "epoch": epoch + 1}
        self.events.append(event)
        if self.cfg.optimizer_transfer.startswith("inherit_"):
            self._pending_fill = growth.param_map
        return ModelChange(growth.model, dict(event), growth.param_map,
                           inherit_optimizer=self.cfg.optimizer_transfer != "fresh")

    def after_optimizer_transfer(self, optimizer: torch.optim.Optimizer) -> None:
        """Fill the new optimizer slots for ``optimizer_transfer="inherit_<scheme>"``.

        The runner should call this right after ``transfer_state`` (zero-fill) when a change was
        applied; it is a no-op for "inherit" and "fresh".
        """
        param_map, self._pending_fill = self._pending_fill, None
        if param_map:
            scheme = self.cfg.optimizer_transfer[len("inherit_"):]
            fill_new_optimizer_slots(optimizer, param_map, scheme, self.generator)

    def _grow(self, kind: str, model: GrowableTransformer):
        init = "normal0.1" if self.cfg.init == "local_learning" else self.cfg.init
        if kind == "W":
            return widen(model, init, self.generator), f"head {model.spec.heads + 1}"
        after = self._depth_position(model)
        return deepen(model, after, init, self.generator), f"after layer {after}"

    def _depth_position(self, model: GrowableTransformer) -> int:
        depth = model.spec.depth
        if self.cfg.depth_policy == "first":
            return 0
        if self.cfg.depth_policy == "last":
            return depth - 1
        if self.cfg.depth_policy == "random":
            return int(torch.randint(depth, (1,), generator=self.generator))
        scores = layer_importance(model, self.cfg.importance_norm)
        return max(range(depth), key=lambda i: scores[i])

    def _caps(self) -> tuple[int, int]:
        """(max layers, max heads) this run may grow to."""
        if self.cfg.stop == "target":
            return parse_arch(self.cfg.target_arch)
        return self.cfg.max_layers, self.cfg.max_heads

    def _next_kind(self, spec: TransformerSpec) -> str | None:
        """The pattern's next event, or the other kind when that dimension is capped; None when both are."""
        max_layers, max_heads = self._caps()
        open_kinds = {"W": spec.heads < max_heads, "D": spec.depth < max_layers}
        kind = self.kinds[len(self.events) % len(self.kinds)]
        if open_kinds[kind]:
            return kind
        other = "D" if kind == "W" else "W"
        return other if open_kinds[other] else None

    # --------------------------------------------------------------------- record, resume
    def summary(self) -> dict[str, Any]:
        return {"final_arch": self.spec.arch if self.spec else None, "growth_stopped": self.stopped,
                "growth_history": [dict(e) for e in self.events]}

    def state_dict(self) -> dict[str, Any]:
        return {"spec": dataclasses.asdict(self.spec) if self.spec else None, "events": [dict(e) for e in self.events],
                "stopped": self.stopped, "plateau": self.plateau.state_dict(),
                "generator": self.generator.get_state() if self.generator else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spec = TransformerSpec(**state["spec"]) if state.get("spec") else None
        self.events = [dict(e) for e in state.get("events", [])]
        self.stopped = state.get("stopped")
        if state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])
        if state.get("generator") is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state["generator"])
        self._resumed = True
