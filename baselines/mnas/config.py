"""The configuration of one meta-learning run (``adagrow meta``): a frozen dataclass saved with every record.

It plays the part ``RunConfig`` plays for the runner: its :meth:`identity` (everything but where files
go and which device computes) names the run directory, so two configurations never share a checkpoint,
and resuming a directory with another configuration is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from adagrow.errors import AdaGrowError

TASKS = ("sinusoid", "mnist", "cifar10", "mnist+cifar10")
METHODS = ("mnas", "maml", "random")
MODULATIONS = ("weight", "film", "none")
PROFILES = ("full", "reference", "smoke")
# The converged CPU profile (issue 19): meta-train until the meta-loss stops improving, capped for a 2-core CPU;
# the numbers it sets, each with its reason.  Measured on the shared 2-core machine (1 thread, load ~3), 5-way
# 1-shot mnist+cifar10 at the defaults: 1.26 s per meta-iteration (M-NAS), 1.27 (random), 1.68 (MAML: its fixed cell
# is the widest), 0.2 s per meta-test episode (M-NAS scores two architectures per episode).
REFERENCE = {
    # the cap: 800 iterations (3,200 tasks) are ~22 min of MAML on the loaded single thread, so the slowest method
    # with its 600 test episodes stays within issue 19's ~30 min a run
    "meta_iters": 800,
    # a window of 50 iterations (200 tasks): one iteration's loss (4 one-shot tasks) varies by ~0.2 nats, a
    # 50-iteration mean by ~0.03, below the improvement the rule asks for at a loss of ~1.4
    "plateau_window": 50,
    # 4 windows (200 iterations) without improvement: one noisy window alone never stops a run
    "plateau_patience": 4,
    # an improvement is a window mean 1% below the best so far (~0.014 nats at 1.4): about half a window's noise
    "plateau_min_delta": 0.01,
    # issue 19: at least 600 meta-test episodes, the same for every method of a seed (paired)
    "test_episodes": 600,
}
# Image tasks: the datasets whose classes form the task's class pool, numbered in this order (for
# ``mnist+cifar10``: 0-9 MNIST's digits, 10-19 CIFAR-10's classes).
POOLS = {"mnist": ("mnist",), "cifar10": ("cifar10",), "mnist+cifar10": ("mnist", "cifar10")}
CLASSES_PER_DATASET = 10
# Where files go, which device computes, and whether to resume: not part of what a result *is*.
NOT_IDENTITY = ("output_dir", "suite", "data_dir", "device", "threads", "resume")


@dataclass(frozen=True)
class MetaConfig:
    task: str = "sinusoid"  # the few-shot problem: sinusoid | mnist | cifar10 | mnist+cifar10 (one class pool of both)
    # mnas (task-conditioned architecture) | maml (one fixed architecture) | random (a uniformly random
    # architecture of the same search space per task, with M-NAS's encoder, modulation and inner loop)
    method: str = "mnas"
    # full | reference (meta-training until the loss plateaus, capped: REFERENCE) | smoke (fewer meta-iterations and
    # test episodes: the pipeline, not a result)
    profile: str = "full"
    # episodes (few-shot classification; sinusoid uses shots and queries only)
    ways: int = 5  # N: classes per episode
    shots: int = 1  # K: labelled examples per class (sinusoid: points) to adapt on
    queries: int = 15  # examples per class the adapted model is scored on
    # meta-test classes (numbers in the task's class pool); the others are meta-train classes (disjoint).
    # Empty: the upper half of every dataset in the pool (5-9; for mnist+cifar10 5-9 and 15-19).
    test_classes: str = ""
    # super-network (the search space) and its meta-weights
    nodes: int = 3  # intermediate nodes of the cell; every earlier node feeds each one (6 edges for 3)
    width: int = 32  # channels (images) or hidden units (sinusoid)
    # MAML
    inner_steps: int = 5  # MAML: gradient steps of adaptation during meta-training
    inner_lr: float = 0.1  # MAML: learning rate of the adaptation steps
    eval_inner_steps: int = 10  # adaptation steps at meta-test
    first_order: bool = False  # True: no second-order terms through the inner loop (cheaper)
    meta_batch: int = 4  # tasks per meta-iteration
    meta_iters: int = 2000  # meta-iterations of training
    meta_lr: float = 1e-3  # Adam's learning rate for the meta-weights
    # the plateau rule (baselines/mnas/plateau.py): stop once the mean meta-train loss of a window of this many
    # iterations has not improved by plateau_min_delta (relative) for plateau_patience windows; 0: no rule,
    # meta_iters iterations (meta_iters stays the cap either way)
    plateau_window: int = 0
    plateau_patience: int = REFERENCE["plateau_patience"]  # windows without improvement before stopping
    plateau_min_delta: float = REFERENCE["plateau_min_delta"]  # an improvement: a window mean this share below the best
    # M-NAS: task encoder, controller, modulation
    # weight: per-task multiplicative modulation of the cell's kernels (the seed's); film: per-channel
    # scale and shift of the cell's output; none: the shared meta-weights as they are
    modulation: str = "weight"
    embed_dim: int = 32  # size of the task embedding
    recon_weight: float = 1.0  # weight of the auto-encoder's reconstruction loss in the meta-loss
    controller_lr: float = 3e-3  # learning rate of the architecture controller
    entropy_weight: float = 1e-2  # entropy bonus of the controller's policy
    baseline_decay: float = 0.9  # moving-average REINFORCE baseline
    # evaluation
    test_episodes: int = 600  # meta-test episodes (the 95% interval is over them)
    checkpoint_every: int = 50  # meta-iterations (training) or episodes (evaluation) between checkpoints
    seed: int = 0  # the random seed of the run (weights, tasks, episodes)
    # where and how (not part of the identity)
    output_dir: str = "runs"  # records go to <output_dir>/<suite>.jsonl, run folders to <output_dir>/runs/
    suite: str = "mnas"  # names the results file <output_dir>/<suite>.jsonl
    data_dir: str | None = None  # dataset root (None: $ADAGROW_DATA, else ./data)
    device: str = "auto"  # auto (CUDA if present), cpu, cuda or cuda:N
    threads: int | None = None  # CPU threads (None: torch's default)
    resume: bool = False  # continue the run from its last checkpoint

    def resolved(self) -> MetaConfig:
        """The config as it runs: the smoke profile shrinks the run; the task sets its own defaults."""
        cfg = self
        if cfg.task in POOLS and not cfg.test_classes.strip():
            upper = [d * CLASSES_PER_DATASET + c for d in range(len(POOLS[cfg.task])) for c in range(5, 10)]
            cfg = dataclasses.replace(cfg, test_classes=",".join(map(str, upper)))
        if cfg.profile == "reference":
            cfg = dataclasses.replace(cfg, meta_iters=min(cfg.meta_iters, REFERENCE["meta_iters"]),
                                      plateau_window=cfg.plateau_window or REFERENCE["plateau_window"],
                                      test_episodes=max(cfg.test_episodes, REFERENCE["test_episodes"]))
        if cfg.profile == "smoke":
            cfg = dataclasses.replace(cfg, meta_iters=min(cfg.meta_iters, 40), test_episodes=min(cfg.test_episodes, 100),
                                      checkpoint_every=min(cfg.checkpoint_every, 20))
        return cfg

    def validate(self) -> None:
        """Every mistake a user can make here, before any data is read."""
        if self.task not in TASKS:
            raise AdaGrowError(f"--task {self.task!r}: choose one of {', '.join(TASKS)}")
        if self.method not in METHODS:
            raise AdaGrowError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.modulation not in MODULATIONS:
            raise AdaGrowError(f"--modulation {self.modulation!r}: choose one of {', '.join(MODULATIONS)}")
        if self.profile not in PROFILES:
            raise AdaGrowError(f"--profile {self.profile!r}: choose one of {', '.join(PROFILES)}")
        positive = ("ways", "shots", "queries", "nodes", "width", "inner_steps", "eval_inner_steps", "meta_batch",
                    "meta_iters", "embed_dim", "test_episodes", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise AdaGrowError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.plateau_window < 0 or self.plateau_patience < 1 or self.plateau_min_delta < 0:
            raise AdaGrowError(f"the plateau rule needs --plateau-window >= 0 (0: off), --plateau-patience >= 1 and "
                               f"--plateau-min-delta >= 0 (got {self.plateau_window}, {self.plateau_patience}, "
                               f"{self.plateau_min_delta})")
        for name in ("inner_lr", "meta_lr", "controller_lr"):
            if getattr(self, name) <= 0:
                raise AdaGrowError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.task != "sinusoid":
            self.class_split()

    @property
    def pool_size(self) -> int:
        """How many classes the task's pool has (10 per dataset)."""
        return CLASSES_PER_DATASET * len(POOLS[self.task])

    def class_split(self) -> tuple[list[int], list[int]]:
        """(meta-train classes, meta-test classes) of the pool: disjoint, each with at least ``ways`` classes."""
        num_classes, text = self.pool_size, self.resolved().test_classes
        try:
            test = sorted({int(c) for c in text.split(",") if c.strip()})
        except ValueError:
            raise AdaGrowError(f"--test-classes takes comma-separated class numbers, got {text!r}") from None
        if any(c < 0 or c >= num_classes for c in test):
            raise AdaGrowError(f"--test-classes {text}: the classes of {self.task} run from 0 to {num_classes - 1}")
        train = [c for c in range(num_classes) if c not in test]
        if min(len(train), len(test)) < self.ways:
            raise AdaGrowError(f"{self.ways}-way episodes need {self.ways} classes on each side; --test-classes "
                               f"{text} leaves {len(train)} meta-train and {len(test)} meta-test classes")
        return train, test

    def identity(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IDENTITY}

    @property
    def run_name(self) -> str:
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.run_stem}-{digest}"

    @property
    def run_stem(self) -> str:
        """The run directory's name without the configuration's hash (the runner looks for siblings by it)."""
        shape = "" if self.task == "sinusoid" else f"-{self.ways}w{self.shots}s"
        return f"meta-{self.task}{shape}-{self.method}-{self.profile}-s{self.seed}"

    @property
    def tag(self) -> str:
        """The row label of the report: method, its modulation where not the default, task shape."""
        shape = f"{self.shots}shot" if self.task == "sinusoid" else f"{self.ways}w{self.shots}s"
        modulation = f"-{self.modulation}" if self.method != "maml" and self.modulation != "weight" else ""
        return f"{self.method}{modulation}-{shape}"
