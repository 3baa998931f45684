"""The pruning pipeline every pruning baseline shares: pretrain (or load) → prune → fine-tune, in one run.

The runner trains; this Method decides.  Epochs ``[0, prune_after)`` are the pretrain phase (plus any
method-specific training before the prune, e.g. DSP's group learning), the prune happens at the end of
epoch ``prune_after`` (or, with ``--pretrained`` and nothing to train before it, while the model is
built), and the rest are fine-tuning.  Each phase is named by ``phase(epoch)`` and the prune step by
``change_phase``, so the record's ``gpu_seconds`` has ``pretrain``, ``prune`` and ``finetune`` apart; the
measurements and evaluations around the prune are booked as ``measure`` and ``eval`` (``ctx.timed``,
``ctx.evaluate``), and the prune step alone is also recorded as ``prune_seconds``.

What a subclass provides: ``prune(ctx, model)`` (returns the pruned model and says what it did),
``restore(model)`` (rebuild the pruned architecture on a freshly built dense model, for resume),
``deploy_model``, and its own state.  Accuracy right after the prune (validation and test) is measured
here by the runner's own evaluation (``ctx.evaluate``), so one run gives both the "before" and the
"after fine-tuning" rows of Tables 3-29 / 3-30; the dense model's params, MACs, latency and accuracy are
measured just before the prune, in the same run as the pruned model's (``pruning.dense``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adagrow.engine.fixed import FIXED_MODELS, build_reference
from adagrow.engine.method import Method, ModelChange, RunContext
from adagrow.engine.timing import PhaseTimer
from adagrow.errors import AdaGrowError


@dataclass(frozen=True)
class PipelineOptions:
    """Options every pruning pipeline has."""

    ratio: float = 0.5  # requested sparsity (share of channels / weights removed)
    # Epochs after the prune.  None: every epoch of the run with --pretrained, else the last half.
    finetune_epochs: int | None = None
    # A trained model to start from (a run's deploy.pt or last.pt): the pretrain phase is skipped.
    pretrained: str | None = None
    # The same, named by a run of this run's output directory (``<output>/runs/<name>/deploy.pt``): what a suite
    # fills in from the shared dense base (suites/derive.py).  A name, not a path, so that the pruning run's
    # identity is one on every machine and under any --output spelling.
    base_run: str | None = None
    stem: str = "auto"  # ResNet references only, as --method fixed

    def __post_init__(self):
        if not 0.0 < self.ratio < 1.0:
            raise AdaGrowError(f"--ratio must be between 0 and 1 (got {self.ratio})")
        if self.finetune_epochs is not None and self.finetune_epochs < 0:
            raise AdaGrowError(f"--finetune-epochs must be 0 or more (got {self.finetune_epochs})")
        if self.pretrained is not None and self.base_run is not None:
            raise AdaGrowError("give --pretrained PATH or --base-run NAME, not both")
        check_base_run(self.base_run)
        # whether --pretrained exists is checked when the run starts (PruningPipeline.check_ready), not here: a
        # suite builds this config for a finished run on a machine where the base's deploy.pt is gone

    @property
    def default_recipe(self) -> str:
        """Pruned models start from the fixed references, trained (and fine-tuned) with their recipe."""
        return "thesis"


class PruningPipeline(Method):
    """Base class of the pruning baselines (see the module docstring)."""

    name = "prune"
    physical = False  # True when the deploy model is physically smaller (structured methods)
    keeps_optimizer = True  # False when pruning replaces the parameters (structured methods)

    def __init__(self, cfg: PipelineOptions):
        self.cfg = cfg
        self.pruned = False
        self.prune_after = 0
        self.result: dict[str, Any] = {}  # what the prune did and measured (goes into the record)

    # ---- what subclasses decide ---------------------------------------------------------------------
    def prune(self, ctx: RunContext, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
        """Prune ``model`` (a dense, trained model; it may be changed in place); return the pruned model
        and what to record (at least ``requested_sparsity`` and ``achieved_sparsity``)."""
        raise NotImplementedError

    def restore(self, model: nn.Module) -> nn.Module:
        """On resume: turn a freshly built dense model into the pruned architecture (values follow)."""
        raise NotImplementedError

    def pre_prune_phase(self, epoch: int) -> str:
        return "pretrain"

    def default_finetune(self, epochs: int) -> int:
        """Fine-tuning epochs when --finetune-epochs is not given: all with --pretrained, else half."""
        return epochs if self.starts_trained else epochs // 2

    @property
    def starts_trained(self) -> bool:
        """Whether the run starts from a trained model (--pretrained or --base-run) instead of pretraining."""
        return self.cfg.pretrained is not None or self.cfg.base_run is not None

    def source_path(self, config) -> str | None:
        return source_path(self.cfg.pretrained, self.cfg.base_run, config)

    def check_ready(self, config) -> None:
        check_source(self.cfg.pretrained, self.cfg.base_run, config)

    # ---- schedule -----------------------------------------------------------------------------------
    def schedule(self, epochs: int) -> int:
        """Epochs trained before the prune."""
        finetune = self.cfg.finetune_epochs
        if finetune is None:
            finetune = self.default_finetune(epochs)
        if finetune > epochs:
            raise AdaGrowError(f"--finetune-epochs {finetune} is more than the run's {epochs} epochs")
        if finetune == epochs and not self.starts_trained:
            raise AdaGrowError("no epoch trains the model before it is pruned: give --pretrained PATH or "
                               f"fewer --finetune-epochs than the run's {epochs} epochs")
        return epochs - finetune

    def phase(self, epoch: int) -> str:
        return self.pre_prune_phase(epoch) if epoch < self.prune_after else "finetune"

    def change_phase(self, epoch: int) -> str:
        return "prune"

    # ---- the Method hooks ---------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        self.prune_after = self.schedule(ctx.epochs)
        model = self.dense_model(ctx)
        if self.pruned:  # resume after the prune: the checkpoint's values go into the pruned shapes
            return self.restore(self.prunable(model))
        if self.prune_after == 0:
            model = self._prune_now(ctx, model)
        return model

    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]) -> ModelChange | None:
        if self.pruned or epoch + 1 != self.prune_after:
            return None
        params_before = sum(p.numel() for p in model.parameters())
        pruned = self._prune_now(ctx, model)
        event = {"kind": "prune", "where": self.name, "params_before": params_before,
                 **{k: self.result[k] for k in ("requested_sparsity", "achieved_sparsity")}}
        return ModelChange(pruned, event, inherit_optimizer=self.keeps_optimizer)

    def summary(self) -> dict[str, Any]:
        return {"pruning": {**self.result, "physical": self.physical, "prune_after_epochs": self.prune_after}}

    def state_dict(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "result": self.result}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pruned, self.result = state["pruned"], state["result"]

    # ---- the dense model ----------------------------------------------------------------------------
    def dense_model(self, ctx: RunContext) -> nn.Module:
        """The model before pruning: the --pretrained one, a fixed reference, or a grown AdaGrow
        architecture (``--model vgg:1-2-2``, trained as AdaGrow trains it, with its branches)."""
        if self.starts_trained:
            path = self.source_path(ctx.config)
            model, source_seconds = load_pretrained(path, ctx, self)
            self.result.setdefault("pretrained_from", path)
            self.result.setdefault("pretrain_seconds", source_seconds)
            return model
        name = ctx.config.model
        if not name:
            raise AdaGrowError(f"--method {self.name} needs --model (one of {', '.join(FIXED_MODELS)}, or a grown "
                               "AdaGrow architecture such as vgg:1-2-2) or --pretrained PATH")
        return build_dense(name, ctx, self.cfg.stem)

    def prunable(self, model: nn.Module) -> nn.Module:
        """The form that is pruned: a grown CNN is fused first (its branches become one convolution)."""
        from adagrow.models.cnn import GrowableCNN
        from adagrow.models.reparam import fuse_model

        if isinstance(model, GrowableCNN) and model.units(growable_only=False):
            return fuse_model(model).train()
        return model

    # ---- the prune ----------------------------------------------------------------------------------
    def _prune_now(self, ctx: RunContext, model: nn.Module) -> nn.Module:
        model = self.prunable(model)
        with ctx.timed("measure"):
            self.result["dense"] = measure(ctx, model)
        # the base's own accuracy, on this run's splits: a report can tell pruning of a model that has learned
        # from pruning of one that has not (issue 19: never read the latter as a pruning result)
        self.result["dense"].update(self.evaluate(ctx, model))
        timer = PhaseTimer(ctx.device)
        # ctx.timed: "prune" also when pruned while the model is built, which the runner does not time
        with ctx.timed("prune"), timer.phase("prune"):
            pruned, info = self.prune(ctx, model)
        self.pruned = True
        self.result.update(info)
        self.result["prune_seconds"] = timer.seconds["prune"]
        self.result["time_unit"] = timer.unit
        with ctx.timed("measure"):
            after = measure(ctx, self.deploy_model(pruned), latency=False)
        self.result["after_prune"] = {**after, **self.evaluate(ctx, pruned)}
        ctx.log(f"  pruned ({self.name}): sparsity {info['achieved_sparsity']:.4f} (requested "
                f"{info['requested_sparsity']:.4f}), val {self.result['after_prune']['val_acc']:.2f}% "
                f"test {self.result['after_prune']['test_acc']:.2f}% before fine-tuning")
        return pruned

    def evaluate(self, ctx: RunContext, model: nn.Module) -> dict[str, float]:
        """Validation and test accuracy of ``model`` on the run's own splits (the runner's evaluation)."""
        if ctx.evaluate is None:
            raise AdaGrowError(f"--method {self.name} evaluates the pruned model through the runner (adagrow train)")
        model = model.to(ctx.device)
        return {"val_acc": ctx.evaluate(model, "val")["acc"], "test_acc": ctx.evaluate(model, "test")["acc"]}


# ---- helpers shared by the methods ------------------------------------------------------------------
def build_dense(name: str, ctx: RunContext, stem: str = "auto") -> nn.Module:
    """A fixed reference (``resnet50``, ``vit_base``...) or a grown AdaGrow architecture (``family:arch``)."""
    if name in FIXED_MODELS:
        return build_reference(name, ctx.num_classes, ctx.input_size, stem, vocab_size=ctx.data_meta.get("vocab_size"))
    if ":" not in name:
        raise AdaGrowError(f"--model {name!r}: give a fixed reference ({', '.join(FIXED_MODELS)}) or a grown AdaGrow "
                           "architecture as family:arch (e.g. vgg:1-2-2, resnet:2-2-3-2, vit:D4W384)")
    from adagrow.api import create_model

    family, arch = name.split(":", 1)
    kw: dict[str, Any] = {}
    if family == "vit":
        kw["input_size"] = ctx.input_size
    elif family == "bert":  # its embedding and positions come from the text dataset, as the grower's do
        meta = ctx.data_meta or {}
        kw.update(vocab_size=meta.get("vocab_size"), max_len=meta.get("max_len") or ctx.input_size[0])
    return create_model(family, arch, ctx.num_classes, in_chans=ctx.input_size[0], **kw)


# ---- starting from a trained run (pruning and BAMC alike) --------------------------------------------------------
def check_base_run(base_run: str | None) -> None:
    if base_run is not None and (not base_run or "/" in base_run or base_run.startswith(".")):
        raise AdaGrowError(f"--base-run {base_run!r} must be the name of a run directory under <output>/runs")


def source_path(pretrained: str | None, base_run: str | None, config) -> str | None:
    """The trained model's file: --pretrained as given, or the base run's deploy.pt in this run's output."""
    if base_run is not None:
        return str(Path(config.output_dir) / "runs" / base_run / "deploy.pt")
    return pretrained


def check_source(pretrained: str | None, base_run: str | None, config) -> None:
    """When the run starts (``Method.check_ready``): the file it starts from exists, or one line says what to do."""
    path = source_path(pretrained, base_run, config)
    if path is not None and not Path(path).is_file():
        if base_run is None:
            raise AdaGrowError(f"--pretrained {path}: no such file (give a run's deploy.pt or last.pt)")
        raise AdaGrowError(f"--base-run {base_run}: no such file {path} (run that base first)")


def load_pretrained(path: str, ctx: RunContext, method: PruningPipeline) -> tuple[nn.Module, float | None]:
    """The model of a finished run's ``deploy.pt`` (the module itself) or of a run's ``last.pt`` (its
    weights, in the architecture ``--model`` names), and the optimisation seconds that produced it."""
    from adagrow.engine.checkpoint import load_checkpoint

    # the user's own model: never "delete it" (that advice is for a run's resume checkpoint)
    payload = load_checkpoint(Path(path), what="--pretrained", fix="give a deploy.pt or last.pt written by `adagrow train`")
    if isinstance(payload.get("model"), nn.Module):  # deploy.pt
        model = copy.deepcopy(payload["model"]).train()
        seconds = (payload.get("record") or {}).get("gpu_seconds")
    elif isinstance(payload.get("model"), dict) and "config" in payload:  # a run's resume checkpoint
        name = ctx.config.model or payload["config"].get("model")
        if not name:
            raise AdaGrowError(f"--pretrained {path}: a checkpoint holds weights only; give --model too")
        model = build_dense(name, ctx, method.cfg.stem)
        try:
            model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            raise AdaGrowError(f"--pretrained {path} does not fit --model {name}: {str(exc).splitlines()[0]}") from None
        seconds = (payload.get("timer") or {}).get("seconds")
    else:
        raise AdaGrowError(f"--pretrained {path} is neither a run's deploy.pt nor its last.pt")
    head = classifier(model)
    out = head.out_features if head is not None else None
    if out is not None and out != ctx.num_classes:
        raise AdaGrowError(f"--pretrained {path} predicts {out} classes; {ctx.config.dataset} has {ctx.num_classes}")
    return model, (sum(seconds.values()) if seconds else None)


def classifier(model: nn.Module) -> nn.Module | None:
    """The output layer (left dense by every method, as in the papers): the last Linear."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def example_input(ctx: RunContext) -> torch.Tensor:
    """A batch-1 input, as the runner's, drawn from its own generator: the run's RNG stream (and so a
    resumed run's equality with an uninterrupted one) does not depend on whether a prune measured here."""
    if len(ctx.input_size) == 1:
        return torch.full((1, ctx.input_size[0]), 5, dtype=torch.long, device=ctx.device)
    return torch.randn(1, *ctx.input_size, generator=torch.Generator().manual_seed(0)).to(ctx.device)


def measure(ctx: RunContext, model: nn.Module, latency: bool = True) -> dict[str, Any]:
    """Params, MACs (batch 1) and, unless ``latency=False``, batch-1 latency of ``model`` on the run's device."""
    from adagrow.measure.latency import measure_latency
    from adagrow.measure.profile import profile

    was_training = model.training
    model = model.to(ctx.device).eval()
    x = example_input(ctx)
    out: dict[str, Any] = dict(profile(model, ctx.input_size, example=x))
    if latency:
        lat = measure_latency(model, x, repeats=ctx.config.latency_repeats, threads=ctx.config.threads)
        out["latency_ms"] = {lat["device"]: lat}
    model.train(was_training)
    return out
