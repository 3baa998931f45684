"""BAMC — Bayesian automatic model compression (Wang et al., IEEE JSTSP 2020; second thesis, seeds/002).

Each quantizable layer's weights get a Gaussian-mixture prior whose mixing weights have a truncated
Dirichlet-process (stick-breaking) prior (:mod:`baselines.quant.dpgmm`).  The number of components a
layer keeps is the number of levels it needs, so its bit-width is ⌈log₂ K⌉: one training run decides
every layer's precision, without the policy-sampling loop of RL searches (HAQ).

One run of the harness, scheduled like the pruning pipelines (``baselines/prune/pipeline.py``):

* epochs ``[0, start)``: the float model is trained (skipped with ``--pretrained PATH``: a trained
  model, the paper's starting point);
* at ``start`` ("search" phase): the float model's accuracy and the uniform-precision rows it is
  compared with (every layer at 4 and 8 bits) are measured, then each layer's mixture is fitted;
* epochs ``[start, end)`` ("bamc" phase, ``--variant train``): the network trains with the mixture's
  negative log-prior added to its loss (``extra_loss``, scaled per training example, as a posterior
  over the weights asks), which pulls the weights onto the levels; every ``update_every`` steps the
  mixture is refitted to the current weights (variational EM, in ``after_step``);
* after the last epoch ("quantize"): each layer's active components give its bit-width; a requested
  average (``--avg-bits``) is met by taking bits where they cost the least; the weights go to the
  component means (``--quantizer means``: a codebook of at most 2^b values per layer) or are
  re-quantized at that width by the project's quantizer (``rtn`` / ``obs`` / ``adagrow``...).

``--variant posthoc`` is the fast variant: no prior in the loss; the mixtures are fitted to the
trained weights after the last epoch and the model is quantized at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from adagrow.engine.method import Method, ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry
from adagrow.quant.model import calibration_inputs, quantizable
from baselines.prune import pipeline
from baselines.prune.pipeline import classifier, load_pretrained
from baselines.quant import allocate as A
from baselines.quant import bits as B
from baselines.quant.dpgmm import DPMixture, fit, init_mixture, neg_log_prior
from baselines.quant.hutchinson import hutchinson_traces
from baselines.quant.rescale import rescale_to_init
from baselines.quant.storage import apply_codebooks, quantize_at, quantize_layers, sq_errors

QUANTIZERS = ("means", "rtn", "obs", "actorder", "adagrow")
VARIANTS = ("train", "posthoc")
PRIOR_SCALES = ("weight", "data")
RESCALES = ("init", "none")
ALLOCATIONS = ("dp", *A.ALLOCATIONS)  # dp: BAMC's own; the others are the baselines it is compared with


@dataclass(frozen=True)
class BAMCConfig:
    # BAMC's own numerics version (adagrow/config.py): 2 = the components' std from the whole layer's weight std,
    # not from the fitted sample's, and the Hessian quantizers calibrated on training images without augmentation
    # (2026-12-07); runs of version 1 are redone by suites.  3 = BatchNorm-fed convolutions rescaled to their
    # initialisation scale before training with the prior (``rescale``, 2026-12-07).
    NUMERICS: ClassVar[int] = 3
    variant: str = "train"  # train: mixture prior in the loss; posthoc: mixtures fitted to the trained weights
    bamc_epochs: int | None = None  # epochs with the prior (train); None: every epoch with --pretrained, else the last half
    max_bits: int = 6  # truncation of the DP: 2^max_bits components per layer
    alpha: float = 0.5  # DP concentration: smaller keeps fewer components
    resolution: float = 0.25  # a component's std, as a share of its layer's weight std (the level spread)
    prior_weight: float = 1.0  # λ: multiplies the negative log-prior term
    prior_scale: str = "weight"  # weight: mean over the quantized weights; data: sum over them per training example
    min_share: float = 0.005  # a component is active while it explains at least this share of its layer
    avg_bits: float | None = None  # budget on the weight-count-weighted average bit-width
    quantizer: str = "means"  # means (codebook of the component means) or a re-quantizer: rtn, obs, actorder, adagrow
    sample: int = 10000  # weights per layer the mixture is fitted to (a seeded subsample of larger layers)
    update_every: int = 50  # training steps between refits of the mixtures (train)
    uniform_bits: tuple[int, ...] = (4, 8)  # uniform-precision rows measured on the starting model
    keep_classifier: bool = False  # leave the output layer in float
    calib_size: int = 256  # calibration samples of the Hessian-based quantizers
    pretrained: str | None = None  # a trained model (deploy.pt or last.pt) to start from
    base_run: str | None = None  # the same, named by a run of this run's output (a suite's shared base; pipeline.py)
    stem: str = "auto"  # ResNet references only, as --method fixed
    resolution_sweep: tuple[float, ...] = (0.5, 2.0)  # factors of --resolution the final bits are re-inferred at
    allocation: str = "dp"  # dp (BAMC) or a baseline allocation at --avg-bits: uniform, random, hessian
    compare: tuple[str, ...] = A.COMPARISONS  # baselines measured on BAMC's model at its average width (uniform-above: ⌈it⌉)
    hessian_samples: int = 256  # training examples of the Hessian-trace (hessian) allocation's loss
    hessian_probes: int = 32  # Hutchinson probes per trace
    # init: a trained start (--pretrained / --base-run) has every BatchNorm-fed convolution put at He-normal's scale
    # before training with the prior, the function unchanged (baselines/quant/rescale.py: L2 under Adam shrinks such
    # layers to where Adam's steps dwarf the prior's σ); none: the weights as trained
    rescale: str = "init"

    def __post_init__(self):
        problems = [
            (self.variant in VARIANTS, f"--variant must be one of {', '.join(VARIANTS)} (got {self.variant!r})"),
            (self.quantizer in QUANTIZERS, f"--quantizer must be one of {', '.join(QUANTIZERS)} (got {self.quantizer!r})"),
            (1 <= self.max_bits <= 8, f"--max-bits must be 1..8 (got {self.max_bits})"),
            (self.alpha > 0, f"--alpha must be positive (got {self.alpha})"),
            (self.resolution > 0, f"--resolution must be positive (got {self.resolution})"),
            (self.prior_weight >= 0, f"--prior-weight must be 0 or more (got {self.prior_weight})"),
            (self.prior_scale in PRIOR_SCALES,
             f"--prior-scale must be one of {', '.join(PRIOR_SCALES)} (got {self.prior_scale!r})"),
            (all(f > 0 for f in self.resolution_sweep),
             f"--resolution-sweep factors must be positive (got {self.resolution_sweep})"),
            (self.allocation in ALLOCATIONS, f"--allocation must be one of {', '.join(ALLOCATIONS)} (got {self.allocation!r})"),
            (self.allocation == "dp" or (self.variant == "posthoc" and self.avg_bits is not None),
             f"--allocation {self.allocation} is a baseline: it needs --variant posthoc and --avg-bits"),
            (all(c in A.COMPARISONS for c in self.compare),
             f"--compare must name {', '.join(A.COMPARISONS)} (got {self.compare})"),
            (self.hessian_samples >= 1 and self.hessian_probes >= 1, "--hessian-samples and --hessian-probes must be positive"),
            (0 < self.min_share < 1, f"--min-share must be between 0 and 1 (got {self.min_share})"),
            (self.avg_bits is None or 1 <= self.avg_bits <= self.max_bits,
             f"--avg-bits must be between 1 and --max-bits {self.max_bits} (got {self.avg_bits})"),
            (self.sample >= 100, f"--sample must be at least 100 (got {self.sample})"),
            (self.update_every >= 1, f"--update-every must be at least 1 (got {self.update_every})"),
            (all(1 <= b <= 16 for b in self.uniform_bits), f"--uniform-bits must be 1..16 (got {self.uniform_bits})"),
            (self.bamc_epochs is None or self.bamc_epochs >= 0, f"--bamc-epochs must be 0 or more (got {self.bamc_epochs})"),
            (self.bamc_epochs is None or self.variant == "train", "--bamc-epochs is for --variant train"),
            (self.pretrained is None or self.base_run is None, "give --pretrained PATH or --base-run NAME, not both"),
            (self.rescale in RESCALES, f"--rescale must be one of {', '.join(RESCALES)} (got {self.rescale!r})"),
        ]
        bad = [message for ok, message in problems if not ok]
        if bad:
            raise AdaGrowError("; ".join(bad))
        pipeline.check_base_run(self.base_run)
        # whether the starting file exists is checked when the run starts (BAMC.check_ready): a suite builds this
        # config for a finished run on a machine where the base's deploy.pt is gone

    @property
    def starts_trained(self) -> bool:
        return self.pretrained is not None or self.base_run is not None

    @property
    def default_recipe(self) -> str:
        return "thesis"  # the fixed references' recipe, as the pruning pipelines


class BAMC(Method):
    name = "bamc"

    def __init__(self, cfg: BAMCConfig):
        self.cfg = cfg
        self.start = 0  # first epoch trained with the prior (train) / the epoch count (posthoc)
        self.n_train = 1
        self.mixtures: dict[str, DPMixture] = {}
        self.quantized = False
        self.steps = 0
        self.result: dict[str, Any] = {}
        self._prior: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # per layer: sorted levels, their log π
        self._epoch_prior: list[torch.Tensor] = []  # the prior term of each step of the current epoch

    def check_ready(self, config) -> None:
        pipeline.check_source(self.cfg.pretrained, self.cfg.base_run, config)

    # ---- schedule -----------------------------------------------------------------------------------
    def schedule(self, epochs: int) -> int:
        if self.cfg.variant == "posthoc":
            return epochs
        bamc = self.cfg.bamc_epochs if self.cfg.bamc_epochs is not None else (epochs if self.cfg.starts_trained else epochs // 2)
        if bamc > epochs:
            raise AdaGrowError(f"--bamc-epochs {bamc} is more than the run's {epochs} epochs")
        if bamc == epochs and not self.cfg.starts_trained:
            raise AdaGrowError("BAMC starts from a trained model: give --pretrained PATH or fewer --bamc-epochs than "
                               f"the run's {epochs} epochs")
        return epochs - bamc

    def phase(self, epoch: int) -> str:
        return "pretrain" if epoch < self.start else "bamc"

    def change_phase(self, epoch: int) -> str:
        return "search"

    # ---- Method hooks -------------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        self.start = self.schedule(ctx.epochs)
        self.n_train = ctx.steps_per_epoch * ctx.config.recipe.batch_size
        model = self._float_model(ctx)
        if self.start == 0 and not self.mixtures:
            self._begin(ctx, model)
        else:
            self._refresh_prior(model)
        return model

    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]) -> ModelChange | None:
        if self._epoch_prior:  # the two terms of the training loss, so that neither is seen to swamp the other
            prior = float(torch.stack(self._epoch_prior).mean())
            self.result.setdefault("loss_terms", []).append(
                {"epoch": epoch + 1, "prior": prior, "task": metrics["train_loss"] - prior})
            self._epoch_prior = []
        if epoch + 1 == self.start and not self.mixtures and self.cfg.variant == "train":
            self._begin(ctx, model)
        if epoch + 1 != ctx.epochs or self.quantized:
            return None
        if not self.mixtures:  # posthoc: the mixtures are fitted to the trained weights now
            self._begin(ctx, model)
        with ctx.timed("quantize"):
            event = self._quantize(ctx, model)
        return ModelChange(model, event)

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        """λ · Σ_l Σ_i −log p(w_i) / Z: Z = Σ_l n_l (the mean over the quantized weights, ``--prior-scale
        weight``) or the number of training examples (``data``: the negative log-posterior per example).

        ``data`` is what Bayesian compression writes (the prior is paid once per data set), but here the
        prior is sharp — σ a quarter of a layer's spread — so each weight costs nats of its own, and Σ_i over
        hundreds of thousands of weights against 50k examples swamps the cross-entropy (a training loss
        of ~230 against ~2).  ``weight`` makes the term a per-weight average, O(1) like the cross-entropy
        per example, so that λ says directly how much a nat of prior per weight is worth against a nat of
        task loss per example.
        """
        if not self._prior or self.quantized or self.cfg.prior_weight == 0:
            return None
        total = sum(neg_log_prior(model.get_submodule(name).weight, levels, log_pi, self.mixtures[name].sigma)
                    for name, (levels, log_pi) in self._prior.items())
        z = self.n_train if self.cfg.prior_scale == "data" else sum(
            model.get_submodule(name).weight.numel() for name in self._prior)
        term = self.cfg.prior_weight * total / z
        self._epoch_prior.append(term.detach())
        return term

    def after_step(self, model: nn.Module) -> None:
        if not self.mixtures or self.quantized or self.cfg.variant != "train":
            return
        self.steps += 1
        if self.steps % self.cfg.update_every == 0:
            self._refit(model, iters=5)

    def summary(self) -> dict[str, Any]:
        return {"bamc": {**self.result, "bamc_start_epoch": self.start, "variant": self.cfg.variant,
                         "allocation": self.cfg.allocation, "prior_scale": self.cfg.prior_scale,
                         "prior_weight": self.cfg.prior_weight}}

    def state_dict(self) -> dict[str, Any]:
        return {"mixtures": {n: m.state() for n, m in self.mixtures.items()}, "quantized": self.quantized,
                "steps": self.steps, "result": self.result}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mixtures = {n: DPMixture.from_state(s) for n, s in state["mixtures"].items()}
        self.quantized, self.steps, self.result = state["quantized"], state["steps"], state["result"]

    # ---- the model ----------------------------------------------------------------------------------
    def _float_model(self, ctx: RunContext) -> nn.Module:
        """The --pretrained model, a fixed reference or a grown architecture (fused: its branches are
        one convolution, the layer that is deployed and so the one quantized)."""
        from adagrow.models.cnn import GrowableCNN
        from adagrow.models.reparam import fuse_model

        if self.cfg.starts_trained:
            path = pipeline.source_path(self.cfg.pretrained, self.cfg.base_run, ctx.config)
            model, seconds = load_pretrained(path, ctx, self)
            self.result.setdefault("pretrained_from", path)
            self.result.setdefault("pretrain_seconds", seconds)
        elif ctx.config.model:
            model = pipeline.build_dense(ctx.config.model, ctx, self.cfg.stem)
        else:
            raise AdaGrowError("--method bamc needs --model (a fixed reference or a grown architecture such as vgg:1-2-2) "
                               "or --pretrained PATH")
        if isinstance(model, GrowableCNN) and model.units(growable_only=False):
            model = fuse_model(model).train()
        if self.cfg.variant == "train" and self.cfg.rescale == "init" and self.cfg.starts_trained:
            # a trained start only: here, before the optimizer exists (a run that pretrains itself would need its
            # optimizer's moments rescaled mid-run).  Deterministic, so a resumed run computes the same factors (and
            # then loads its checkpoint's weights)
            example = torch.randn(4, *ctx.input_size, generator=torch.Generator().manual_seed(0)).to(ctx.device)
            factors = rescale_to_init(model.to(ctx.device), example)
            self.result["rescaled"] = {name: round(c, 6) for name, c in factors.items()}
            if factors:
                ctx.log(f"  bamc: {len(factors)} BatchNorm-fed convolutions put at their initialisation scale "
                        f"(factors {min(factors.values()):.3g}–{max(factors.values()):.3g})")
        return model

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        """The layers BAMC quantizes: every Conv2d and Linear (the classifier too unless --keep-classifier)."""
        head = classifier(model) if self.cfg.keep_classifier else None
        return {name: m for name, m in quantizable(model, ()) if m is not head}

    # ---- search -------------------------------------------------------------------------------------
    def _begin(self, ctx: RunContext, model: nn.Module) -> None:
        """Measure the float model and its uniform-precision rows, then fit every layer's mixture."""
        self.result["float"] = self._accuracy(ctx, model)
        self.result["uniform"] = {f"w{b}": self._uniform(ctx, model, b) for b in self.cfg.uniform_bits}
        if self.cfg.allocation != "dp":  # a baseline run: no mixtures
            return
        with ctx.timed("search"):  # also when it runs while the model is built, which the runner does not time
            layers = self.layers(model)
            samples = {name: self._sample(layer.weight, seed=0) for name, layer in layers.items()}
            self.mixtures = self._fit_mixtures(samples, spreads(layers), self.cfg.resolution)
        self._refresh_prior(model)
        found = {n: len(m.active(self.cfg.min_share)) for n, m in self.mixtures.items()}
        ctx.log(f"  bamc: mixtures fitted to {len(found)} layers; active components {list(found.values())}")

    def _fit_mixtures(self, samples: dict[str, torch.Tensor], spread: dict[str, float],
                      resolution: float) -> dict[str, DPMixture]:
        """A fresh mixture per layer, fitted to its sample, its components' std ``resolution`` × the whole
        layer's weight std (``spread``).

        Not the sample's std: in a layer whose weights are almost all zero (a converged ResNet-18 on MNIST
        has layers where 99.99% are, behind dead BN channels) a 10,000-weight sample can miss every live
        weight, and σ from it came out 3,000× too small (5.9e-8 against the layer's 1.8e-4): each live weight
        then cost ~10^11 nats and the training loss started at ~10^8.
        """
        out = {}
        for name, sample in samples.items():
            sigma = resolution * max(spread[name], 1e-12)
            out[name] = fit(sample, init_mixture(sample, 2**self.cfg.max_bits, sigma, self.cfg.alpha))
        return out

    def _refit(self, model: nn.Module, iters: int) -> None:
        for name, mix in self.mixtures.items():
            fit(self._sample(model.get_submodule(name).weight, seed=self.steps), mix, iters=iters)
        self._refresh_prior(model)

    def _refresh_prior(self, model: nn.Module) -> None:
        """The levels the loss pulls towards: components with a tenth of the active share or more."""
        self._prior = {}
        for name, mix in self.mixtures.items():
            keep = mix.active(self.cfg.min_share / 10)
            order = torch.argsort(mix.means[keep])
            device = model.get_submodule(name).weight.device
            levels = mix.means[keep][order].float().to(device)
            log_pi = mix.expected_log_pi()[keep][order].float().to(device)
            self._prior[name] = (levels, log_pi)

    def _sample(self, weight: torch.Tensor, seed: int) -> torch.Tensor:
        """At most ``--sample`` of the layer's weights, drawn with their own generator (the run's RNG
        stream stays as it would be without BAMC)."""
        flat = weight.detach().flatten()
        if flat.numel() <= self.cfg.sample:
            return flat.double().cpu()
        idx = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(seed))[: self.cfg.sample]
        return flat[idx.to(flat.device)].double().cpu()

    # ---- quantization -------------------------------------------------------------------------------
    def _quantize(self, ctx: RunContext, model: nn.Module) -> dict[str, Any]:
        if self.cfg.variant == "train" and self.cfg.allocation == "dp":
            self._refit(model, iters=50)
        layers = self.layers(model)
        samples = {n: self._sample(m.weight, seed=0) for n, m in layers.items()}
        counts = {n: m.weight.numel() for n, m in layers.items()}
        before = {n: m.weight.detach().clone() for n, m in layers.items()}
        self.result["before_snap"] = self._accuracy(ctx, model)  # the model every row below quantizes
        original = copy.deepcopy(model) if self.cfg.allocation == "dp" and self.cfg.compare else None
        if self.cfg.allocation == "dp":
            found = {n: self.mixtures[n].means[self.mixtures[n].active(self.cfg.min_share)] for n in layers}
            bits = {n: B.bits_for(len(levels)) for n, levels in found.items()}
            inferred = dict(bits)
            levels = B.fit_budget(bits, counts, samples, found, self.cfg.avg_bits)
            with ctx.timed("measure"):
                stable = self._resolution_sweep(samples, spreads(layers), counts, inferred)
            if self.cfg.quantizer == "means":
                overhead = apply_codebooks(layers, levels)
            else:
                overhead = quantize_layers(model, bits, self.cfg.quantizer, self._calibration(ctx))
        else:  # a baseline run: its allocation at --avg-bits, in the same format
            found, inferred, stable = {}, {}, {}
            bits = self._allocate(ctx, self.cfg.allocation, model, layers, samples, counts, self.cfg.avg_bits)
            overhead = quantize_at(model, layers, bits, self.cfg.quantizer, samples, self._inputs(ctx))
        self.quantized = True
        self.result["layers"] = [
            {"name": n, "shape": list(layers[n].weight.shape), "components": len(found[n]) if n in found else None,
             "inferred_bits": inferred.get(n), "stable": stable.get(n), "bits": bits[n],
             "rel_error": B.relative_error(before[n], layers[n].weight)} for n in layers]
        self.result.update(self._size(model, layers, bits, overhead))
        self.result["after_snap"] = self._accuracy(ctx, model)
        self.result["quantizer"] = self.cfg.quantizer
        if original is not None:
            with ctx.timed("measure"):
                self.result["baselines"] = self._baselines(ctx, original, self.result["avg_bits"])
        ctx.log(f"  bamc: bits per layer {[bits[n] for n in layers]}, average {self.result['avg_bits']:.2f}"
                + (f" (inferred {self.result['avg_bits_inferred']:.2f}, {self.result['bits_status']})"
                   if self.cfg.allocation == "dp" else f" ({self.cfg.allocation} allocation)")
                + f", {self.result['size_bytes']:,} bytes; test acc {self.result['before_snap']['test_acc']:.2f} before "
                f"quantization, {self.result['after_snap']['test_acc']:.2f} after")
        return {"kind": "quantize", "where": "bamc", "avg_bits": self.result["avg_bits"],
                "params_before": sum(p.numel() for p in model.parameters())}

    def _resolution_sweep(self, samples: dict[str, torch.Tensor], spread: dict[str, float], counts: dict[str, int],
                          inferred: dict[str, int]) -> dict[str, bool]:
        """Re-infer every layer's bits from fresh mixtures at each ``--resolution-sweep`` factor of the
        resolution.  A layer's width is *inferred* (a property of its weights) only where it is the same at
        every resolution; where it moves with the resolution, the resolution chose it, not the data."""
        sweep = [{"resolution": self.cfg.resolution, "bits": dict(inferred)}]
        for factor in self.cfg.resolution_sweep:
            mixtures = self._fit_mixtures(samples, spread, self.cfg.resolution * factor)
            sweep.append({"resolution": self.cfg.resolution * factor,
                          "bits": {n: B.bits_for(len(m.active(self.cfg.min_share))) for n, m in mixtures.items()}})
        sweep.sort(key=lambda r: r["resolution"])
        for row in sweep:
            row["avg_bits"] = A.average(row["bits"], counts)
        stable = {n: len({row["bits"][n] for row in sweep}) == 1 for n in inferred}
        total = sum(counts.values())
        self.result["resolution_sweep"] = sweep
        self.result["stable_share"] = sum(counts[n] for n in stable if stable[n]) / total
        self.result["bits_status"] = "inferred" if all(stable.values()) else "set by --resolution"
        return stable

    def _allocate(self, ctx: RunContext, kind: str, model: nn.Module, layers: dict[str, nn.Module],
                  samples: dict[str, torch.Tensor], counts: dict[str, int], budget: float) -> dict[str, int]:
        if kind == "uniform":
            return A.uniform(counts, budget, self.cfg.max_bits)
        if kind == "uniform-above":
            return A.uniform_above(counts, budget, self.cfg.max_bits)
        if kind == "random":
            return A.random_allocation(counts, budget, self.cfg.max_bits, seed=ctx.config.seed)
        ctx.log(f"  bamc: Hessian traces of {len(layers)} layers ({self.cfg.hessian_probes} probes, "
                f"{self.cfg.hessian_samples} training examples) ...")
        traces = self._traces(ctx, model, layers)
        self.result.setdefault("hessian_traces", traces)
        errors = {n: sq_errors(layers[n].weight, samples[n], self.cfg.quantizer, self.cfg.max_bits) for n in layers}
        return A.hessian_allocation(counts, traces, errors, budget, self.cfg.max_bits)

    def _traces(self, ctx: RunContext, model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, float]:
        """Hutchinson estimates of each layer's Hessian trace of the training cross-entropy on
        ``--hessian-samples`` training examples, the model in eval mode (as PyHessian)."""
        if ctx.train_batches is None:
            raise AdaGrowError("--allocation hessian needs training data from the runner")
        batches = []
        for x, y in ctx.train_batches():
            batches.append((x, y))
            if sum(b[0].shape[0] for b in batches) >= self.cfg.hessian_samples:
                break
        x = torch.cat([b[0] for b in batches])[: self.cfg.hessian_samples]
        y = torch.cat([b[1] for b in batches])[: self.cfg.hessian_samples]
        was_training = model.training
        model.eval()
        try:
            return hutchinson_traces(lambda: nn.functional.cross_entropy(model(x), y),
                                     {n: m.weight for n, m in layers.items()}, self.cfg.hessian_probes, seed=ctx.config.seed)
        finally:
            model.train(was_training)

    def _baselines(self, ctx: RunContext, original: nn.Module, budget: float) -> dict[str, Any]:
        """Each ``--compare`` allocation at BAMC's average width (uniform-above: the next whole width above it,
        left out when the width is whole), in its storage format, on the model BAMC quantized (a copy taken
        before the snap)."""
        out = {}
        for kind in self.cfg.compare:
            if kind == "uniform-above" and abs(budget - round(budget)) < 1e-9:
                continue  # the uniform row is at BAMC's width already
            q = copy.deepcopy(original)
            layers = self.layers(q)
            samples = {n: self._sample(m.weight, seed=0) for n, m in layers.items()}
            counts = {n: m.weight.numel() for n, m in layers.items()}
            bits = self._allocate(ctx, kind, q, layers, samples, counts, max(1.0, budget))
            overhead = quantize_at(q, layers, bits, self.cfg.quantizer, samples, self._inputs(ctx))
            others = sum(p.numel() for p in q.parameters()) - sum(counts.values())
            out[kind] = {"bits": [bits[n] for n in layers], "avg_bits": A.average(bits, counts),
                         "size_bytes": B.size_bytes({n: (counts[n], bits[n]) for n in layers}, overhead, others),
                         **self._accuracy(ctx, q)}
            # one line per allocation: with its Hessian traces and evaluations the comparison takes minutes on a CPU
            ctx.log(f"  bamc: {kind} allocation at {out[kind]['avg_bits']:.2f} bits: test acc {out[kind]['test_acc']:.2f}")
        return out

    def _inputs(self, ctx: RunContext) -> list[torch.Tensor]:
        return self._calibration(ctx) if self.cfg.quantizer not in ("means", "rtn") else []

    def _size(self, model: nn.Module, layers: dict[str, nn.Module], bits: dict[str, int], overhead: int) -> dict[str, Any]:
        counts = {n: layers[n].weight.numel() for n in bits}
        total = sum(counts.values())
        others = sum(p.numel() for p in model.parameters()) - total
        inferred = {r["name"]: r["inferred_bits"] for r in self.result["layers"]}
        return {"avg_bits": sum(bits[n] * counts[n] for n in bits) / total,
                "avg_bits_inferred": (sum(inferred[n] * counts[n] for n in bits) / total
                                      if all(v is not None for v in inferred.values()) else None),
                "size_bytes": B.size_bytes({n: (counts[n], bits[n]) for n in bits}, overhead, others),
                "float_size_bytes": 4 * sum(p.numel() for p in model.parameters()),
                "budget_avg_bits": self.cfg.avg_bits}

    def _uniform(self, ctx: RunContext, model: nn.Module, b: int) -> dict[str, Any]:
        """The starting model with every BAMC layer at ``b`` bits (RTN, or the --quantizer if it is one)."""
        method = "rtn" if self.cfg.quantizer == "means" else self.cfg.quantizer
        q = copy.deepcopy(model)
        layers = self.layers(q)
        with ctx.timed("measure"):
            quantize_layers(q, dict.fromkeys(layers, b), method, self._calibration(ctx) if method != "rtn" else [])
        others = sum(p.numel() for p in q.parameters()) - sum(m.weight.numel() for m in layers.values())
        size = B.size_bytes({n: (m.weight.numel(), b) for n, m in layers.items()},
                            sum(8 * m.weight.shape[0] for m in layers.values()), others)
        return {"bits": b, "method": method, "size_bytes": size, **self._accuracy(ctx, q)}

    def _accuracy(self, ctx: RunContext, model: nn.Module) -> dict[str, float]:
        if ctx.evaluate is None:
            raise AdaGrowError("--method bamc evaluates its models through the runner (adagrow train)")
        return {"val_acc": ctx.evaluate(model, "val")["acc"], "test_acc": ctx.evaluate(model, "test")["acc"]}

    def _calibration(self, ctx: RunContext) -> list[torch.Tensor]:
        if ctx.train_batches is None:
            raise AdaGrowError(f"--quantizer {self.cfg.quantizer} needs calibration data from the runner")
        if ctx.calibration_batches is not None:  # training images without augmentation, as adagrow quantize
            return calibration_inputs(ctx.calibration_batches(self.cfg.calib_size), self.cfg.calib_size)
        return calibration_inputs(ctx.train_batches(), self.cfg.calib_size)


def spreads(layers: dict[str, nn.Module]) -> dict[str, float]:
    """Each layer's weight std over all its weights (the scale of its mixture's components)."""
    return {name: float(layer.weight.detach().float().std()) for name, layer in layers.items()}


METHODS.register("bamc", MethodEntry(BAMCConfig, BAMC,
                                     "BAMC: per-layer bit-widths from a Dirichlet-process Gaussian-mixture prior (JSTSP 2020)"))
