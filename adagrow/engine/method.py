"""The interface every method plugs into the one runner.

The runner (``adagrow.engine.runner``) owns the loop, the optimizer's life, the learning-rate
schedule, checkpoints, timing, W&B and the result record.  A *method* owns only its decisions:
which model to start from, whether to change it after an epoch (grow, prune, stop growing), and
what the deployable model is.  Fixed training, AdaGrow, every growing baseline and every pruning
pipeline are each one small subclass of :class:`Method`.

Resume contract: ``state_dict()`` must hold everything needed to rebuild the model's *current*
architecture (e.g. the growth history) and the method's own counters and RNG-free decisions.  On
resume the runner calls ``load_state_dict(saved)`` and then ``build_model(ctx)``, which must return
a model of the saved architecture, ready for ``model.load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from adagrow.config import RunConfig
    from adagrow.data.registry import DatasetSpec


@dataclass
class RunContext:
    """What a method may know about the run it is part of."""

    config: RunConfig
    dataset: DatasetSpec
    input_size: tuple[int, int, int]  # (channels, height, width) the model is fed
    num_classes: int
    device: torch.device
    epochs: int
    steps_per_epoch: int
    log: Callable[[str], None] = print
    # What the data loader reported (sizes, and for text vocab_size / max_len).
    data_meta: dict[str, Any] = field(default_factory=dict)
    # An iterator factory over training batches (x, y) already on ``device``; methods that need
    # data of their own (local-learning init, calibration, importance scores) draw from it.
    train_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    # ``calibration_batches(n)``: n training examples without augmentation (post-training quantization's
    # calibration data, ``DataBundle.calibration``); None where the training batches are not augmented (text).
    calibration_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    # The same over the validation split, endlessly (e.g. a search controller's reward, batch by batch).
    val_batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    # ``evaluate(model, "val" | "test")``: the runner's evaluation on its own split (its amp and
    # channels_last settings), {"loss", "acc"}, timed as "eval"; set by the runner.
    evaluate: Callable[[nn.Module, str], dict[str, float]] | None = None
    # ``with ctx.timed("measure"): ...`` books the enclosed time to that phase of the run's timer,
    # not to the phase it runs in (e.g. a latency measurement inside a prune).
    timed: Callable[[str], AbstractContextManager] = lambda phase: nullcontext()


@dataclass
class ModelChange:
    """What a method returns when it changed the model after an epoch.

    ``param_map`` maps each parameter of the changed model to the parameter of the old model it
    continues, optionally with the slices of the new tensor that the old values occupy (width growth
    of Transformers).  Parameters that are the *same object* before and after need no entry; new
    parameters have none.  The runner uses it to carry optimizer state across (new slots zero).
    """

    model: nn.Module
    event: dict[str, Any]
    param_map: dict[nn.Parameter, tuple[nn.Parameter, tuple[slice, ...] | None]] = field(
        default_factory=dict
    )
    inherit_optimizer: bool = True


class Method:
    """Base class: fixed-size training.  Subclasses override what they decide."""

    name = "fixed"

    def build_model(self, ctx: RunContext) -> nn.Module:
        raise NotImplementedError

    def check_ready(self, config) -> None:
        """Called by the runner when the run is about to start (not when its config is built, listed or found done),
        before any data loads: raise ``AdaGrowError`` (one line) for an input that must exist by then, e.g.
        a file an option names (``config``: the run's RunConfig, for paths relative to its output).  A suite
        builds the configs of finished runs on a machine that no longer holds such files, to see that they
        are done."""

    def on_epoch_end(
        self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]
    ) -> ModelChange | None:
        """Called after each epoch's validation; return a change to apply it, or None."""
        return None

    def after_optimizer_transfer(self, optimizer: torch.optim.Optimizer) -> None:
        """Called after a change's optimizer state was carried over (new slots zero), e.g. to fill
        the new slots otherwise (Table 3-16's options)."""

    def recalibrate(self, ctx: RunContext, model: nn.Module) -> bool:
        """Called right after a change was applied and validated once: re-estimate what the change
        left uncalibrated (e.g. BN running statistics of new modules, from a few training batches).
        Return True if anything changed, and the runner validates again (the record keeps both)."""
        return False

    def after_step(self, model: nn.Module) -> None:
        """Called by the training loop after every optimizer step (e.g. MoGrow's EMA of the weights)."""

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        """A term added to the training loss (e.g. L1 on BN gammas for network slimming)."""
        return None

    def phase(self, epoch: int) -> str:
        """Name of the phase the epoch belongs to, for GPU-seconds per phase."""
        return "train"

    def trains(self, epoch: int) -> bool:
        """False for an epoch the run waits out: no step and no evaluation, but the learning-rate schedule (a
        function of the global step) moves on by an epoch and ``on_epoch_end`` is still called (e.g. APS's
        baselines, which retrain on the same part of the schedule as APS after its search epochs)."""
        return True

    def change_phase(self, epoch: int) -> str:
        """Name of the phase ``on_epoch_end`` and ``recalibrate`` after ``epoch`` are timed under."""
        return "grow"

    def deploy_model(self, model: nn.Module) -> nn.Module:
        """The model users deploy (fused, pruned...).  Default: the trained model itself."""
        return model

    def arch(self, model: nn.Module) -> str | None:
        """A human-readable architecture string for the record."""
        return None

    def summary(self) -> dict[str, Any]:
        """Extra keys for the result record (e.g. ``growth_events``)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
