"""What the three growing baselines share with AdaGrow: the growable CNN families, the model's resume
state, the fused deploy model and the growth-event record.

Each baseline is a subclass of :class:`~adagrow.grow.method.AdaGrowMethod` configured through an
:class:`~adagrow.grow.method.AdaGrowConfig` built from the baseline's own options.  From AdaGrow it
reuses: ``build_model`` (the seed model and, on resume, the saved architecture), ``state_dict`` /
``load_state_dict`` (structure, decision RNG, events), ``recalibrate`` (BN statistics of the modules
listed in ``_new_bns``), ``deploy_model`` (fused), ``arch`` and ``summary``.  A baseline overrides
``on_epoch_end`` (its own when / where / how) and adds its own state under ``"baseline"``.

The optional parameter cap (``max_params`` in each baseline's config) counts parameters as the run
record's ``params`` field does for a grown model: the *fused deploy model* (``deploy_model`` then
``count_params``; :func:`~adagrow.models.cnn_count.fused_params` gives the same number without
building it), so a cap taken from an AdaGrow record compares like with like.  A growth is predicted
before it is made (:func:`predicted_params`) and made only if it fits; nothing is grown and undone.
A seed already above the cap is refused before training (:meth:`GrowingBaseline.check_seed_fits`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
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


def check_common(family: str, blocks: int, arch: str | None, what: str = "seed_arch",
                 max_params: int | None = None) -> None:
    """Options every baseline shares: a known family, 3 or 4 blocks, an architecture of that many, a
    parameter cap that is a positive whole number when set."""
    if family not in FAMILIES:
        raise AdaGrowError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if blocks not in (3, 4):
        raise AdaGrowError("blocks must be 3 or 4")
    if arch is not None and len(parse_arch(arch)) != blocks:
        raise AdaGrowError(f"{what} {arch!r} does not have {blocks} blocks")
    if max_params is not None and (isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 1):
        raise AdaGrowError(f"max_params must be a whole number of parameters, at least 1 (or unset: no cap); "
                           f"got {max_params!r}")


def predicted_params(model: GrowableCNN, grow: Callable[[GrowableCNN], Any] | None = None, **structure: Any) -> int:
    """Fused (deploy) parameters of ``model`` after a growth, without touching ``model`` or the run.

    The twin is rebuilt from ``model.structure()`` (with ``structure``'s entries replaced, e.g.
    ``widths``) on the meta device, so it has shapes but no storage, then ``grow`` is applied to it.
    Nothing of the run moves: the model, its decision RNG and the method's events are not used, and
    initialisers on meta tensors draw no random numbers; torch's CPU generator is forked all the same,
    so that an initialiser that did would still leave the run's stream where it was."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        twin = GrowableCNN.from_structure({**model.structure(), **structure}, model.policy)
        if grow is not None:
            grow(twin)
        return fused_params(twin)


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

    def build_model(self, ctx) -> nn.Module:
        fresh = self._pending is None
        model = super().build_model(ctx)
        if fresh:
            self.check_seed_fits(model)
        return model

    def check_seed_fits(self, model: GrowableCNN) -> None:
        """A seed above the cap would end the run above it too (growth only adds): refuse before training,
        rather than write a "capped" record that is not."""
        cap, size = self.baseline_config.max_params, fused_params(model)
        if cap is not None and size > cap:
            raise AdaGrowError(f"--method {self.name}: the seed model ({model.arch()}, widths "
                               f"{'-'.join(map(str, model.widths))}) has {size:,} parameters, above max_params {cap:,}; "
                               "a capped run needs a smaller seed (seed_arch / target_arch / arch / seed_fraction)")

    def fits(self, model: GrowableCNN, grow: Callable[[GrowableCNN], Any] | None = None, **structure: Any) -> bool:
        """Whether the growth (see :func:`predicted_params`) keeps the model within ``max_params``."""
        cap = self.baseline_config.max_params
        return cap is None or predicted_params(model, grow, **structure) <= cap

    @property
    def cap_reason(self) -> str:
        return f"parameter cap ({self.baseline_config.max_params})"

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "max_params": self.baseline_config.max_params}

    def own_state(self) -> dict[str, Any]:
        return {}

    def load_own_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "baseline": self.own_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.load_own_state(state["baseline"])
