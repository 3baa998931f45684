"""Run configuration: frozen dataclasses, named recipes and profiles.

A run is fully described by one :class:`RunConfig`.  Its resolved form (``to_dict``) is saved in
the checkpoint, in every result record and in W&B, so any number can be traced back to the exact
settings that produced it.  Presets (which recipe, which methods per dataset, which thesis table)
live in ``suites/``; this module only holds the building blocks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from adagrow.errors import AdaGrowError
from adagrow.registry import Registry


@dataclass(frozen=True)
class Recipe:
    """How to optimise: optimizer, learning rate and its cosine schedule, regularisation, batch."""

    name: str  # the recipe's name (--recipe)
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: float  # peak learning rate (after warm-up), followed by a per-step cosine
    weight_decay: float  # L2 / decoupled weight decay (AdamW)
    epochs: int  # training epochs
    batch_size: int = 128  # training batch
    momentum: float = 0.9  # SGD momentum
    label_smoothing: float = 0.0  # of the cross-entropy loss
    warmup_epochs: float = 0.0  # linear warm-up of the learning rate
    min_lr: float = 0.0  # the per-step cosine ends here
    grad_clip: float | None = None  # clip the gradients' global norm to this (None: no clipping)
    # None: constant weight decay; else it follows its own per-step cosine down to this value.
    min_weight_decay: float | None = None
    # RandAugment (torchvision, 2 ops) of this magnitude on top of the dataset's own augmentation.
    randaugment: int | None = None


RECIPES: Registry[Recipe] = Registry("recipe")
# The thesis' recipe for its fixed-size references (Table 3-18, SPEC §5): Adam, lr 5e-3, cosine, L2 5e-4.
RECIPES.register("thesis", Recipe("thesis", "adam", lr=5e-3, weight_decay=5e-4, epochs=100))
# A standard strong CIFAR recipe (SGD + momentum 0.9, lr 0.1, wd 5e-4, cosine; ~95% for ResNet-18
# on CIFAR-10 in 200 epochs).  Reported side by side because the thesis' fixed models are weak.
RECIPES.register("standard", Recipe("standard", "sgd", lr=0.1, weight_decay=5e-4, epochs=200))
# AdaGrow's CNN recipe (Table 3-18: SGD, lr 0.1, cosine, 100 epochs; SPEC §3.6: momentum 0.9, cosine
# over the whole run, and the released code's wd 5e-4 and batch 128).
RECIPES.register("adagrow", Recipe("adagrow", "sgd", lr=0.1, weight_decay=5e-4, epochs=100))
# AdaGrow's Transformer recipe as Table 3-18 gives it for every growing model: SGD, lr 0.1, cosine,
# 200 epochs for Transformers.  The table names no weight decay, momentum or batch for growing; we use
# the CNN recipe's (momentum 0.9, wd 5e-4, batch 128).
RECIPES.register("adagrow-transformer", Recipe("adagrow-transformer", "sgd", lr=0.1, weight_decay=5e-4, epochs=200))
# NOT the thesis': a common recipe for training small ViTs / BERTs from scratch (AdamW, lr 1e-3, wd 0.05,
# 5 warm-up epochs, clipping 1.0), 200 epochs.  An alternative for the Transformers (--recipe).
RECIPES.register(
    "transformer-adamw",
    Recipe("transformer-adamw", "adamw", lr=1e-3, weight_decay=0.05, epochs=200, warmup_epochs=5, grad_clip=1.0),
)
# The released AdaGrow code's CNN recipe (SPEC §3.9; research/growing-peers.md §1): SGD momentum 0.9,
# batch 128, per-iteration cosines of lr 0.1 -> 1e-5 and weight decay 5e-4 -> 5e-6, RandAugment m9.
# The ``released-code`` variant runs under it unless another recipe is named.
RECIPES.register(
    "released-code",
    Recipe("released-code", "sgd", lr=0.1, weight_decay=5e-4, epochs=100, min_lr=1e-5, min_weight_decay=5e-6,
           randaugment=9),
)


def resolve_recipe(method: str, model: str | None, name: str | None = None, *, batch_size: int | None = None,
                   lr: float | None = None, min_lr: float | None = None, method_config: Any = None) -> Recipe:
    """The named recipe, else the method configuration's own (``default_recipe``, e.g. the
    released-code variant's), else the method's default (fixed: the thesis' recipe; AdaGrow: its CNN
    or Transformer recipe), with the command line's batch size / learning rate / final lr applied."""
    if name is None:
        name = getattr(method_config, "default_recipe", None)
    if name is None:
        name = "thesis" if method == "fixed" else ("adagrow-transformer" if model in ("vit", "bert") else "adagrow")
    overrides = {k: v for k, v in (("batch_size", batch_size), ("lr", lr), ("min_lr", min_lr)) if v is not None}
    return dataclasses.replace(RECIPES.get(name), **overrides)


@dataclass(frozen=True)
class Profile:
    """A size preset that shrinks any run; ``full`` changes nothing."""

    name: str
    epochs: int | None = None  # overrides the recipe's epochs
    train_subset: int | None = None  # number of training examples used (seeded subset)
    test_subset: int | None = None
    val_size: float | None = None  # overrides the held-out validation size (count if > 1)
    latency_repeats: int = 200
    # Method options this profile changes when the method has them and they are at their defaults,
    # e.g. growth every epoch so that a few-epoch smoke run still grows.
    method_overrides: dict[str, Any] = field(default_factory=dict)
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. no warm-up in a short run
    # Used instead of this profile for methods that grow (their config has ``grow_interval``): growth
    # needs epochs to happen at all, and a grown model needs steps after its last growth.
    growing: Profile | None = None
    # Used instead for text datasets (SST-2's training phrases differ from its dev sentences, so a few
    # epochs generalise better than many).
    text: Profile | None = None
    description: str = ""


PROFILES: Registry[Profile] = Registry("profile")
PROFILES.register("full", Profile("full", description="the recipe as written"))
PROFILES.register(
    "smoke",
    Profile(
        "smoke",
        epochs=2,
        train_subset=4000,
        val_size=1000,
        latency_repeats=30,
        recipe_overrides={"batch_size": 64, "warmup_epochs": 0.0},
        description="2 epochs on 4,000 training images (how long: docs/timings.md)",
        growing=Profile(
            "smoke",
            epochs=8,
            train_subset=4000,
            val_size=1000,
            latency_repeats=30,
            # growth after each of the first 3 epochs (one width, two depth growths: the W1D2 pattern
            # once), then 5 epochs of fine-tuning (a depth growth costs about an epoch to recover from),
            # and no automatic stop: over a few noisy epochs the plateau rule would end growth before it
            # has shown anything (full runs keep the thesis').  Batch 32 gives the few images twice the
            # steps: on MNIST 96.6% instead of 91% at batch 64 (results/mnist.jsonl; times: docs/timings.md).
            method_overrides={"grow_interval": 1, "stop": "none", "grow_until": 0.45},
            recipe_overrides={"batch_size": 32, "warmup_epochs": 0.0},
            description="growing methods: 8 epochs on 4,000 examples at batch 32, growth after each of the first 3",
        ),
        text=Profile(
            "smoke",
            epochs=3,
            train_subset=8000,
            val_size=800,
            latency_repeats=30,
            method_overrides={"grow_interval": 1, "stop": "none"},
            recipe_overrides={"batch_size": 64, "warmup_epochs": 0.0},
            description="text: 3 epochs on 8,000 examples, growth after every epoch, no auto-stop",
        ),
    ),
)


# The converged CPU profile (issue 19): the whole training split, long enough that the fixed references converge
# on MNIST, the thesis' 100-epoch growth schedule compressed in proportion; its own name, so that no table ever
# mixes it with `full` or `smoke` rows.  Every number it sets is here, each with its reason.
PROFILES.register(
    "reference",
    Profile(
        "reference",
        # fixed models: ResNet-18 on MNIST is within a few hundredths of its final accuracy after ~5 epochs of a
        # cosine schedule (Adam 5e-3 or SGD 0.1); 6 leaves a margin at ~3.5 CPU-minutes per epoch (2 cores).
        epochs=6,
        train_subset=None,  # the whole training split, less the held-out validation below
        val_size=5000,  # MNIST: 55,000 train / 5,000 validation (the thesis' and torchvision's 60k training split)
        latency_repeats=200,  # as `full`: the latency loop stops earlier once the median has settled
        # no warm-up: a few-epoch cosine run needs none, and every method gets the same schedule shape
        recipe_overrides={"warmup_epochs": 0.0},
        description="converged CPU reference: the whole training split, 6 epochs (fixed), 12 (growing)",
        growing=Profile(
            "reference",
            # the thesis: 100 epochs, a growth event every 3, ~5 events before MNIST's one-layer cap ends growth,
            # i.e. ~85% of the run fine-tuning.  Compressed ~8x: 12 epochs, a growth event every epoch (3/8 of an
            # epoch would be exact; one epoch is the finest the runner grows at), growth allowed in the first half,
            # so at least half of the run fine-tunes the final architecture (a depth growth costs ~1 epoch).
            epochs=12,
            train_subset=None,
            val_size=5000,
            latency_repeats=200,
            # the stopping rule stays each method's own (auto / cap / AutoGrow's): only the clock is compressed
            method_overrides={"grow_interval": 1, "grow_until": 0.5},
            recipe_overrides={"warmup_epochs": 0.0},
            description="growing methods: 12 epochs on the whole split, a growth event per epoch in the first half",
        ),
        text=Profile(
            "reference",
            # SST-2 / IMDB: the Transformer thesis schedule (200 epochs, growth every 5) is far beyond a CPU; 10
            # epochs with a growth event every epoch.  SST-2's training phrases differ from its dev
            # sentences, so longer runs overfit (docs/methods/adagrow-transformer.md).
            epochs=10,
            train_subset=None,
            val_size=2000,
            latency_repeats=200,
            # the Transformer grower has no grow_until: its automatic stop (on by default) ends growth
            method_overrides={"grow_interval": 1},
            recipe_overrides={"warmup_epochs": 0.0},
            description="text: 10 epochs on the whole split, a growth event per epoch until the automatic stop",
        ),
    ),
)


# Fields that do not change what a run computes, left out of its identity (``RunConfig.identity``):
# where files live (output_dir, data_dir), whether a missing dataset may be fetched (download), how a
# run is continued (resume) or cleaned up (keep_checkpoint), logging (wandb) and loader processes
# (num_workers: batches are seeded by (seed, epoch), not by worker).  device and threads stay in: they
# change the numerics and every timing in the record.  A preempted run resumed elsewhere keeps its
# identity when it asked for ``--device auto``, which is the string the identity holds.
# branch_compute only changes how the same function is computed (engine/speed.py; float rounding aside).
NOT_IDENTITY = frozenset({"output_dir", "data_dir", "download", "resume", "keep_checkpoint", "wandb", "wandb_artifacts",
                          "num_workers", "branch_compute"})
WANDB_MODES = ("off", "offline", "online")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=,@-]{0,99}")  # a suite or tag: part of file names
_NAME_CHARS = "letters, digits and . _ - + = , @"
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run."""

    dataset: str  # a registered dataset (adagrow datasets lists them)
    method: str = "fixed"  # a registered method (adagrow.methods)
    model: str | None = None  # fixed: a reference model name; adagrow: the family
    recipe: Recipe = field(default_factory=lambda: RECIPES.get("thesis"))  # how to optimise (RECIPES)
    method_config: Any = None  # the method's own frozen dataclass (see adagrow.methods)
    seed: int = 0  # the random seed of the run (initial weights, data order, subsets)
    profile: str = "full"  # a size preset (PROFILES): full changes nothing, smoke shrinks the run
    epochs: int | None = None  # training epochs (None: the recipe's, or the profile's)
    train_subset: int | None = None  # train on a seeded subset of this many examples (None: all, or the profile's)
    test_subset: int | None = None  # test on this many examples (None: the whole test set)
    val_size: float = 0.1  # fraction (or count, if > 1) of the training set held out
    data_dir: str | None = None  # dataset root (None: $ADAGROW_DATA, else ./data)
    download: bool = False  # download a missing dataset (if online)
    output_dir: str = "results"  # records go to <output_dir>/<suite>.jsonl, run folders to <output_dir>/runs/
    suite: str = "adhoc"  # names the results file <output_dir>/<suite>.jsonl
    device: str = "auto"  # auto (CUDA if present), cpu, cuda or cuda:N
    amp: bool = True  # bf16 autocast on CUDA (never on CPU)
    channels_last: bool = True  # on CUDA, for convolutional models
    compile: bool = False  # torch.compile the model for training (again after each growth)
    # how re-parameterisable units compute their branches: one by one, or as one padded conv (the same
    # function); auto: the faster on this device, measured (engine/speed.py)
    branch_compute: Literal["auto", "loop", "batched"] = "auto"
    deterministic: bool = False  # use deterministic torch / cuDNN algorithms (slower)
    threads: int | None = None  # CPU threads for training (None: torch's default)
    # CPU threads for the batch-1 latency measurement, pinned (not torch's default, which an executor changes),
    # so that latencies compare across executors and machines; the record's latency names it
    latency_threads: int = 1
    num_workers: int = 2  # data-loader processes
    latency_repeats: int = 200  # timed batch-1 forwards behind the latency figure
    wandb: Literal["off", "offline", "online"] = "off"  # log to Weights & Biases
    wandb_artifacts: bool = False  # with --wandb: also log the deploy model as an artifact
    resume: bool = False  # continue the run from its last checkpoint
    tag: str | None = None  # a label of the user's in the run's name (suites: the entry's name)
    # Keep the resume checkpoint (last.pt, the size of model + optimizer) once the run has finished;
    # by default only deploy.pt and record.json stay, so a suite of hundreds of runs fits on a disk.
    keep_checkpoint: bool = False
    # Text: a pretrained Hugging Face tokenizer ("bert-base-uncased[@revision]"); None: WordPiece trained offline.
    tokenizer: str | None = None

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else self.recipe.epochs

    @property
    def run_stem(self) -> str:
        """The readable part of the run's name."""
        # Parts that repeat another part are left out (a dataset's suite is named after it; a suite
        # entry's tag already starts with its method), so names stay readable; the hash is the identity.
        label = self.tag or f"{self.method}-{self.model or 'default'}"
        if not label.startswith(self.method):
            label = f"{self.method}-{label}"
        parts = [self.suite] if self.suite not in (self.dataset, "adhoc") else []
        parts += [self.dataset, label, self.recipe.name, self.profile, f"s{self.seed}"]
        return "-".join(parts)

    @property
    def run_name(self) -> str:
        """The run's identity as a directory name: the readable stem, then a hash of the resolved
        config, so that runs differing in any setting that matters (e.g. one method option) never
        share a directory, and the same config always finds (and resumes) the same one."""
        return f"{self.run_stem}-{identity_hash(self.identity())}"

    def identity(self) -> dict[str, Any]:
        """The resolved settings that determine the result (all but ``NOT_IDENTITY``), as JSON values."""
        return identity_of(self.resolved().to_dict())

    def resolved(self) -> RunConfig:
        """What actually runs: the method's default options filled in (the options dataclass the
        model needs: Transformer AdaGrow for ``vit`` / ``bert``) and the profile applied.  Idempotent."""
        from adagrow.methods import load_builtin_methods  # here: building a config needs no methods

        config_cls, _ = load_builtin_methods().get(self.method).resolve(self.model)
        mcfg = config_cls() if self.method_config is None else self.method_config
        if not isinstance(mcfg, config_cls):
            raise AdaGrowError(f"--method {self.method} --model {self.model} takes the options of {config_cls.__name__}, "
                               f"not of {type(mcfg).__name__}")
        return dataclasses.replace(self, method_config=mcfg).with_profile()

    def validate(self) -> None:
        """Reject, in one message, settings that would crash a run or record a meaningless one
        (no epoch, no data, a non-finite learning rate...), before any work is done."""
        r = self.recipe
        problems = [
            *_below(1, epochs=self.total_epochs, train_subset=self.train_subset, test_subset=self.test_subset,
                    batch_size=r.batch_size, threads=self.threads, latency_repeats=self.latency_repeats,
                    latency_threads=self.latency_threads),
            *_below(0, num_workers=self.num_workers, weight_decay=r.weight_decay, momentum=r.momentum,
                    min_lr=r.min_lr, warmup_epochs=r.warmup_epochs, label_smoothing=r.label_smoothing),
            *_below(0, strict=True, lr=r.lr, val_size=self.val_size, grad_clip=r.grad_clip),
        ]
        checks = [
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32) (got {self.seed})"),
            (self.wandb in WANDB_MODES, f"wandb must be one of {', '.join(WANDB_MODES)} (got {self.wandb!r})"),
            (_DEVICE.fullmatch(self.device), f"device must be auto, cpu, cuda or cuda:N (got {self.device!r})"),
            (self.branch_compute in ("auto", "loop", "batched"),
             f"branch_compute must be auto, loop or batched (got {self.branch_compute!r})"),
            (_NAME.fullmatch(self.suite), f"suite {self.suite!r} is not a usable file name ({_NAME_CHARS})"),
            (self.tag is None or _NAME.fullmatch(self.tag), f"tag {self.tag!r} is not a usable file name ({_NAME_CHARS})"),
        ]
        checks += [
            (str(self.output_dir).strip() != "", "output_dir is empty (give a directory, e.g. --output runs)"),
            (not (isinstance(r.min_lr, (int, float)) and isinstance(r.lr, (int, float)) and r.min_lr > r.lr),
             f"min_lr ({r.min_lr}) is above lr ({r.lr}): the learning rate would rise over the run"),
        ]
        problems += [message for ok, message in checks if not ok]
        grows = dataclasses.is_dataclass(self.method_config) and "family" in {
            f.name for f in dataclasses.fields(self.method_config)}
        problems += model_problems(self.dataset, self.method, self.model, family_only=grows)
        if not problems:  # sizes compare numbers already known to be valid
            problems += self._size_problems()
        if problems:
            raise AdaGrowError("invalid run configuration: " + "; ".join(problems))

    def _size_problems(self) -> list[str]:
        """Subsets and a batch the dataset cannot fill are refused rather than silently capped."""
        from adagrow.data.registry import DATASETS

        spec = DATASETS.get(self.dataset)
        if spec.kind == "text":  # text: the validation examples come out of the subset (data/text.py)
            train = spec.train_size
            train_note = f"{spec.train_size:,} training examples"
        else:  # vision: the validation split is held out first (data/vision.py)
            n_val = int(self.val_size) if self.val_size > 1 else round(self.val_size * spec.train_size)
            train = spec.train_size - n_val
            train_note = f"{train:,} training examples after the {n_val:,} held out for validation"
        problems = []
        if self.train_subset is not None and self.train_subset > train:
            problems.append(f"train_subset {self.train_subset:,} is more than {self.dataset} has ({train_note})")
        if self.test_subset is not None and self.test_subset > spec.test_size:
            problems.append(f"test_subset {self.test_subset:,} is more than {self.dataset} has "
                            f"({spec.test_size:,} test examples)")
        used = min(train, self.train_subset or train)
        if self.recipe.batch_size > used:
            problems.append(f"batch_size {self.recipe.batch_size:,} is more than the {used:,} training examples used")
        return problems


    def with_profile(self) -> RunConfig:
        """Apply the named profile's overrides where the user did not set them explicitly."""
        prof = PROFILES.get(self.profile)
        mcfg = self.method_config
        grows = mcfg is not None and dataclasses.is_dataclass(mcfg) and hasattr(mcfg, "grow_interval")
        from adagrow.data.registry import DATASETS  # here: the data registry is not needed to build configs

        if prof.text is not None and DATASETS.get(self.dataset).kind == "text":
            prof = prof.text
        elif prof.growing is not None and grows:
            prof = prof.growing
        named = RECIPES.get(self.recipe.name) if self.recipe.name in RECIPES else self.recipe
        recipe_changes = {k: v for k, v in prof.recipe_overrides.items()
                          if getattr(self.recipe, k) == getattr(named, k)}  # the user's own value wins
        if mcfg is not None and dataclasses.is_dataclass(mcfg) and prof.method_overrides:
            defaults = {f.name: f.default for f in dataclasses.fields(mcfg)}
            changes = {k: v for k, v in prof.method_overrides.items()
                       if k in defaults and getattr(mcfg, k) == defaults[k]}
            mcfg = dataclasses.replace(mcfg, **changes)
        return dataclasses.replace(
            self,
            recipe=dataclasses.replace(self.recipe, **recipe_changes),
            method_config=mcfg,
            val_size=prof.val_size if prof.val_size is not None and self.val_size == 0.1 else self.val_size,
            epochs=self.epochs if self.epochs is not None else prof.epochs,
            train_subset=self.train_subset if self.train_subset is not None else prof.train_subset,
            test_subset=self.test_subset if self.test_subset is not None else prof.test_subset,
            latency_repeats=min(self.latency_repeats, prof.latency_repeats),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.method_config is not None and dataclasses.is_dataclass(self.method_config):
            d["method_config"] = dataclasses.asdict(self.method_config)
        d["total_epochs"] = self.total_epochs
        d["numerics"] = NUMERICS_VERSION
        d["method_numerics"] = getattr(self.method_config, "NUMERICS", None)
        return d


# The version of the arithmetic a run performs.  Bump it in the same commit as any change that alters what
# a run with an unchanged config computes (a rewritten branch computation, another initialisation, a changed
# default inside a method...).  It is part of every run's identity, so suites rerun what the current code
# would compute differently instead of counting an older record as done, and every record says which
# numerics produced it.  History: 1 = every record before this field existed (no "numerics" key);
# 2 = the version introduced with it (2026-12).
NUMERICS_VERSION = 2
# Run settings added after records of the current numerics exist enter the identity only when set away from
# their neutral value, so those records keep their names and stay done (a run that sets one is another run).
# A change of arithmetic bumps NUMERICS_VERSION instead, or, where only one method's arithmetic changed, that
# method's own version: a ``NUMERICS: ClassVar[int]`` on its config class (recorded as ``method_numerics``; absent
# means 1), so that only its runs are redone.
LATE_FIELDS: dict[str, Any] = {"tokenizer": None, "method_numerics": None}


def identity_of(config: dict[str, Any]) -> dict[str, Any]:
    """The identity part of a config dict (``RunConfig.to_dict()``, e.g. one saved in a checkpoint),
    normalised to JSON values so that a saved and a live config compare equal.  A config saved before
    the numerics version existed is version 1."""
    out = {k: v for k, v in config.items() if k not in NOT_IDENTITY and not (k in LATE_FIELDS and v == LATE_FIELDS[k])}
    out["numerics"] = config.get("numerics", 1)
    return json.loads(json.dumps(out, default=str))


def identity_hash(identity: dict[str, Any]) -> str:
    """8 hex digits naming an identity (a clash is caught: each run directory records its identity)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def _below(low: float, *, strict: bool = False, **values: float | None) -> list[str]:
    """A message for each value (None: not set) that is not a finite number >= ``low`` (> if strict)."""
    return [f"{name} must be {'above' if strict else 'at least'} {low} (got {v})" for name, v in values.items()
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and (v > low if strict else v >= low))]


def model_problems(dataset: str, method: str, model: str | None, *, family_only: bool = False) -> list[str]:
    """An unknown model, or one of the other modality (an image model on text), refused before any data
    loads.  Names: a fixed reference model (resnet18, bert_small...), a growable family (resnet, vit...;
    the only names of a method whose options have a ``family``), or a grown architecture ``family:arch``
    (pruning baselines)."""
    from adagrow.data.registry import DATASETS
    from adagrow.engine.fixed import FIXED_MODELS
    from adagrow.models.cnn import FAMILIES as CNN_FAMILIES
    from adagrow.models.transformer import FAMILIES as TRANSFORMER_FAMILIES

    if dataset not in DATASETS:
        return []  # said by DATASETS.get wherever the dataset is used
    if model is None:
        return [f"--method {method} needs --model, one of: {', '.join(FIXED_MODELS)}"] if method == "fixed" else []
    families = (*CNN_FAMILIES, *TRANSFORMER_FAMILIES)
    base = model.split(":", 1)[0]
    if family_only:
        known, names = model in families, families
    elif method == "fixed":
        known, names = model in FIXED_MODELS, FIXED_MODELS
    else:  # another method may build models of its own names (tests register some): it says so itself
        known, names = True, ()
        if not (model in FIXED_MODELS or base in families):
            return []
    if not known:
        return [f"unknown model {model!r} for --method {method}; known: {', '.join(names)}"
                ]
    modality = "text" if base.startswith("bert") else "vision"
    kind = DATASETS.get(dataset).kind
    if modality != kind:
        return [f"--model {model} is a {modality} model and {dataset} is a {kind} dataset"]
    return []
