"""What the three growing baselines share with AdaGrow: the growable CNN families, the model's resume
state, the fused deploy model and the growth-event record.

Each baseline is a subclass of :class:`~adagrow.grow.method.AdaGrowMethod` configured through an
:class:`~adagrow.grow.method.AdaGrowConfig` built from the baseline's own options.  From AdaGrow it
reuses: ``build_model`` (the seed model and, on resume, the saved architecture), ``state_dict`` /
``load_state_dict`` (structure, decision RNG, events), ``recalibrate`` (BN statistics of the modules
listed in ``_new_bns``), ``deploy_model`` (fused), ``arch`` and ``summary``.  A baseline overrides
``on_epoch_end`` (its own when / where / how) and adds its own state under ``"baseline"``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.grow.method import AdaGrowConfig, AdaGrowMethod
from adagrow.measure.profile import count_params
from adagrow.models.arch import parse_arch
from adagrow.models.cnn import FAMILIES, GrowableCNN
from adagrow.models.cnn_count import fused_params

# No block cap: AdaGrow caps every block at one layer on MNIST (the thesis' rule for AdaGrow); the
# baselines follow their papers, which have none.
NO_CAP = 1_000_000


def check_common(family: str, blocks: int, arch: str | None, what: str = "seed_arch") -> None:
    """Options every baseline shares: a known family, 3 or 4 blocks, an architecture of that many."""
    if family not in FAMILIES:
        raise AdaGrowError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if blocks not in (3, 4):
        raise AdaGrowError("blocks must be 3 or 4")
    if arch is not None and len(parse_arch(arch)) != blocks:
        raise AdaGrowError(f"{what} {arch!r} does not have {blocks} blocks")


def adagrow_config(cfg: Any, **kw) -> AdaGrowConfig:
    """The AdaGrowConfig whose model building and resume a baseline reuses (no AdaGrow decisions:
    the baseline's ``on_epoch_end`` makes them)."""
    return AdaGrowConfig(family=cfg.family, blocks=cfg.blocks, stop="none", layers_per_block_cap=NO_CAP,
                         recalibrate_batches=getattr(cfg, "recalibrate_batches", 0), **kw)


def growth_record(model: GrowableCNN, epoch: int, metrics: dict[str, float], before: tuple[int, str],
                  event: dict[str, Any]) -> dict[str, Any]:
    """A growth event in AdaGrow's record format (the runner adds the accuracies after the growth)."""
    params_before, arch_before = before
    return {
        "epoch": epoch + 1,
        **event,
        "arch": model.arch(),
        "arch_before": arch_before,
        "params_before": params_before,
        "params_after": count_params(model),
        "fused_params_after": fused_params(model),
        "val_acc_before": float(metrics["val_acc"]),
    }


def snapshot(model: GrowableCNN) -> tuple[int, str]:
    return count_params(model), model.arch()


def batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


class GrowingBaseline(AdaGrowMethod):
    """AdaGrow's machinery with the baseline's own decisions; its state rides along in ``state_dict``."""

    def __init__(self, config: Any, adagrow: AdaGrowConfig):
        super().__init__(adagrow)
        self.baseline_config = config

    def _family(self, ctx) -> str:
        family = ctx.config.model or self.baseline_config.family
        if family not in FAMILIES:
            raise AdaGrowError(f"--method {self.name} has no family {family!r}; known: {', '.join(FAMILIES)}")
        return family

    def own_state(self) -> dict[str, Any]:
        return {}

    def load_own_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "baseline": self.own_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.load_own_state(state["baseline"])
